"""Existing customers (issue 12): an admin onboards a company that was a customer before the
portal — by form or by CSV (a dry run first, then all rows or none) — with its superuser
invited by mail, its plan and prepaid balance with their original dates, and one audit entry
per company; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import re
import secrets
from pathlib import Path

import pytest

from backend.services import catalog, clock, coverage, ledger, onboarding, outbox
from backend.services.users import create_staff
from backend.tables import (
    Agreement,
    AuditEntry,
    AuditKind,
    Company,
    Coverage,
    EntryKind,
    LedgerEntry,
    Lot,
    User,
)
from tests.support import PASSWORD, csrf_token, login, make_company, new_email, new_org_number
from tests.support import post_form as _post_form

URL = "/staff/admin/onboarding"
REASON = "Kunde fra før portalen"
NEW_PASSWORD = "Valgt-passord-42"


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def post_form(client, path: str, data: dict) -> object:
    return await _post_form(client, path, data)


async def _staff(role: str = "admin") -> User:
    return await create_staff(
        email=new_email(role), name=f"Ansatt {role}", role=role, password=PASSWORD
    )


async def _admin_client(client) -> User:
    admin = await _staff()
    assert (await login(client, admin.email)).status_code == 303
    return admin


def _days(n: int) -> datetime.date:
    return clock.today() + datetime.timedelta(days=n)


def _form(**overrides: object) -> dict:
    form: dict = {
        "org_number": new_org_number(),
        "company_name": f"Gammel Kunde {secrets.token_hex(3)} AS",
        "address": "Industriveien 3",
        "postal_code": "3616",
        "city": "Kongsberg",
        "name": "Gunnar Gammel",
        "email": new_email("gammel"),
        "phone": "+47 32 12 34 56",
        "contract": "K-2025-117",
        "plan_products": ["inventor", "vault"],
        "plan_starts_on": _days(-100).isoformat(),
        "plan_ends_on": _days(80).isoformat(),
        "balance": "10",
        "unit": "timer",
        "lot_products": ["inventor"],
        "bought_on": _days(-200).isoformat(),
        "last_day": _days(40).isoformat(),
        "reason": REASON,
        "idempotency_key": f"onb-{new_org_number()}",
    }
    form.update(overrides)
    return form


async def _invitation_link(settings, smtp, email: str) -> str:
    await outbox.send_due(settings)
    [message] = await smtp.wait_for(email)
    assert message["Subject"] == "Velkommen til supportportalen"
    text = message.get_body(("plain",)).get_content()
    [path] = re.findall(re.escape(settings.base_url) + r"(/password/reset/[A-Za-z0-9_-]+)", text)
    return path


async def _imports(**where: object) -> list[AuditEntry]:
    query = AuditEntry.objects().where(AuditEntry.kind == AuditKind.import_.value)
    for name, value in where.items():
        query = query.where(getattr(AuditEntry, name) == value)
    return await query


async def test_the_form_onboards_a_customer_with_its_plan_and_balance_and_original_dates(
    client, other_client, settings, smtp
):
    admin = await _admin_client(client)
    page = await client.get(URL)
    assert page.status_code == 200 and "Eksisterende kunder" in page.text
    assert 'href="/staff/admin/onboarding"' in (await client.get("/staff/admin")).text
    form = _form()
    response = await post_form(client, URL, form)
    assert response.status_code == 303, response.text
    company = await Company.objects().get(Company.org_number == form["org_number"])
    assert response.headers["location"] == f"/staff/companies/{company.id}"
    [superuser] = await User.objects().where(User.company == company.id)
    assert superuser.role == "superuser" and superuser.email == form["email"]
    assert superuser.phone == "+4732123456"

    # The plan with its original dates: support within it is the plan's.
    [plan] = await Agreement.objects().where(Agreement.company == company.id)
    assert (plan.starts_on, plan.ends_on) == (_days(-100), _days(80))
    assert await coverage.expected_coverage(company.id, "vault", _days(10)) == Coverage.plan
    assert await coverage.expected_coverage(company.id, "vault", _days(81)) == Coverage.hourly

    # The lot with its original dates, credited by an `import` entry naming the contract.
    [lot] = await Lot.objects().where(Lot.company == company.id)
    assert lot.minutes == lot.remaining_minutes == 600
    assert lot.expires_on == _days(41)
    assert clock.oslo_date(lot.created_at) == _days(-200)
    [entry] = await LedgerEntry.objects().where(LedgerEntry.lot == lot.id)
    assert entry.kind == EntryKind.import_.value and entry.minutes == 600
    assert entry.cause_type == "import" and entry.cause_id == "K-2025-117"
    assert entry.created_by == admin.id
    assert await ledger.balance(company.id, clock.today()) == 600

    # One audit entry, with the admin, the reason and what was imported.
    [audited] = await _imports(company=company.id)
    assert audited.actor == admin.id and audited.reason == REASON
    after = json.loads(audited.after)
    assert after["contract"] == "K-2025-117" and after["lot"]["minutes"] == 600

    # The superuser cannot sign in before choosing a password with the mailed link.
    assert (await login(other_client, form["email"], "")).status_code != 303
    assert (await login(other_client, form["email"], PASSWORD)).status_code != 303
    link = await _invitation_link(settings, smtp, form["email"])
    chosen = await post_form(
        other_client, link, {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    )
    assert chosen.status_code in (200, 303)
    assert (await login(other_client, form["email"], NEW_PASSWORD)).status_code == 303

    # The statement names the import, the contract and the original dates.
    usage = (await other_client.get("/portal/usage")).text
    assert "Overført fra tidligere avtale" in usage
    note = onboarding.lot_note(
        onboarding.LotImport(600, _days(-200), _days(40), ["inventor"]), "K-2025-117"
    )
    assert note in usage
    assert f"{_days(-200):%d.%m.%Y}" in note and f"{_days(40):%d.%m.%Y}" in note
    assert note in (await other_client.get("/portal/usage.csv")).text
    # The admin's company page and reports read the new kind.
    assert (await client.get(f"/staff/companies/{company.id}")).status_code == 200
    assert (await client.get("/staff/admin/reports")).status_code == 200
    assert (await client.get(URL)).text.count(form["company_name"]) >= 1


async def test_an_imported_lot_expires_on_its_own_date():
    admin = await _staff()
    company_id = await onboarding.onboard(
        admin,
        _form(plan_products=[], plan_starts_on="", plan_ends_on="", last_day=_days(5).isoformat()),
    )
    last_day = _days(5)
    # Usable to and including its last day; the sweep writes it off the day after.
    assert await ledger.expire_lots(last_day, company_id) == 0
    assert await ledger.balance(company_id, last_day) == 600
    assert await ledger.expire_lots(last_day + datetime.timedelta(days=1), company_id) == 600
    assert await ledger.balance(company_id, last_day + datetime.timedelta(days=1)) == 0
    kinds = [e.kind for e in await LedgerEntry.objects().where(LedgerEntry.company == company_id)]
    assert sorted(kinds) == ["expiry", "import"]


async def test_a_double_submit_onboards_once(client):
    await _admin_client(client)
    form = _form()
    assert (await post_form(client, URL, form)).status_code == 303
    assert (await post_form(client, URL, form)).status_code == 303
    assert await Company.count().where(Company.org_number == form["org_number"]) == 1
    [company] = await Company.objects().where(Company.org_number == form["org_number"])
    assert len(await _imports(company=company.id)) == 1
    assert await Lot.count().where(Lot.company == company.id) == 1


# Dates as days from today, made into dates when the test runs (never at collection).
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"plan_ends_on": -1}, onboarding.PLAN_ENDED),
        ({"plan_starts_on": 10, "plan_ends_on": 5}, onboarding.PLAN_ENDS_BEFORE_START),
        ({"last_day": -1}, onboarding.LOT_EXPIRED),
        ({"bought_on": 3}, onboarding.LOT_BOUGHT_LATER),
        ({"last_day": "9999-12-31"}, onboarding.LOT_TOO_LONG),
        ({"last_day": 800}, onboarding.LOT_TOO_LONG),
        ({"plan_starts_on": "01.01.0001"}, onboarding.TOO_FAR_BACK),
        ({"bought_on": -3700}, onboarding.TOO_FAR_BACK),
        ({"plan_products": ["solidworks"]}, onboarding.PRODUCTS_UNKNOWN),
        ({"lot_products": []}, onboarding.LOT_PRODUCTS_MISSING),
        ({"plan_starts_on": "31.02.2026"}, onboarding.DATE_INVALID),
        ({"balance": "1,5"}, onboarding.BALANCE_INVALID),
        ({"unit": "dager"}, onboarding.UNIT_INVALID),
        ({"org_number": "123456789"}, "Ugyldig organisasjonsnummer"),
        ({"phone": "123"}, "Skriv inn et gyldig norsk telefonnummer"),
        ({"email": "ikke-en-adresse"}, "Ugyldig e-postadresse."),
        ({"contract": ""}, onboarding.CONTRACT_REQUIRED),
        ({"reason": ""}, onboarding.REASON_REQUIRED),
    ],
)
async def test_the_form_refuses_bad_input_with_a_message_and_creates_nothing(
    client, overrides, message
):
    admin = await _admin_client(client)
    dated = {k: _days(v).isoformat() if isinstance(v, int) else v for k, v in overrides.items()}
    form = _form(**dated)
    response = await post_form(client, URL, form)
    assert response.status_code == 422
    assert message in response.text
    assert form["company_name"] in response.text  # the input is kept
    assert await Company.count().where(Company.name == form["company_name"]) == 0
    assert await _imports(actor=admin.id) == []


async def test_an_org_number_or_email_already_in_the_portal_is_refused_not_merged(client):
    admin = await _admin_client(client)
    company_id, superuser_email = await make_company("Finnes Fra Før AS")
    company = await Company.objects().get(Company.id == company_id)
    response = await post_form(client, URL, _form(org_number=company.org_number))
    assert response.status_code == 422
    assert "Organisasjonsnummeret finnes allerede i portalen." in response.text
    response = await post_form(client, URL, _form(email=superuser_email))
    assert response.status_code == 422
    assert "E-postadressen finnes allerede i portalen." in response.text
    assert await Lot.count().where(Lot.company == company_id) == 0
    assert await _imports(actor=admin.id) == []


# --- CSV ------------------------------------------------------------------------------------

HEADER = (
    "orgnr;firmanavn;adresse;postnummer;poststed;kontaktperson;epost;telefon;kontrakt;"
    "avtale_produkter;avtale_fra;avtale_til;saldo;enhet;saldo_produkter;kjopt;gyldig_til"
)


def _row(**overrides: str) -> dict[str, str]:
    row = {
        "orgnr": new_org_number(),
        "firmanavn": f"Fil Kunde {secrets.token_hex(3)} AS",
        "adresse": "Fjordgata 1",
        "postnummer": "7010",
        "poststed": "Trondheim",
        "kontaktperson": "Frida Fil",
        "epost": new_email("fil"),
        "telefon": "73 12 34 56",
        "kontrakt": "GML-1",
        "avtale_produkter": "inventor vault",
        "avtale_fra": f"{_days(-30):%d.%m.%Y}",
        "avtale_til": _days(150).isoformat(),
        "saldo": "",
        "enhet": "",
        "saldo_produkter": "",
        "kjopt": "",
        "gyldig_til": "",
    }
    row.update(overrides)
    return row


def _csv(*rows: dict[str, str], separator: str = ";", bom: bool = False) -> bytes:
    columns = HEADER.split(";")
    lines = [separator.join(columns)]
    lines += [separator.join(row[c] for c in columns) for row in rows]
    text = "\r\n".join(lines) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


async def _upload(client, data: bytes, reason: str = REASON, name: str = "kunder.csv"):
    token = await csrf_token(client)
    return await client.post(
        f"{URL}/csv",
        data={"reason": reason, "_csrf_token": token},
        files=[("files", (name, data, "text/csv"))],
        follow_redirects=False,
    )


async def _confirm(client, data: bytes, reason: str = REASON):
    form = {"data": base64.b64encode(data).decode(), "reason": reason}
    return await post_form(client, f"{URL}/csv/confirm", form)


def _hidden_data(page: str) -> str:
    [data] = re.findall(r'name="data" value="([^"]*)"', page)
    return data


async def test_a_dry_run_shows_what_would_be_created_and_writes_nothing(client):
    admin = await _admin_client(client)
    lot_row = _row(
        firmanavn="Timer Kunde AS",
        avtale_produkter="",
        avtale_fra="",
        avtale_til="",
        saldo="90",
        enhet="minutter",
        saldo_produkter="fusion",
        kjopt=_days(-10).isoformat(),
        gyldig_til=_days(300).isoformat(),
    )
    plan_row = _row()
    data = _csv(plan_row, lot_row)
    companies, users = await Company.count(), await User.count()
    response = await _upload(client, data)
    assert response.status_code == 200, response.text
    assert "Ingen feil" in response.text
    assert plan_row["firmanavn"] in response.text and "Timer Kunde AS" in response.text
    assert f"{_days(300):%d.%m.%Y}" in response.text
    assert "Bekreft og importer 2 firma" in response.text
    assert (await Company.count(), await User.count()) == (companies, users)
    assert await _imports(actor=admin.id) == []

    # Confirming what the dry run carried imports both, with their plan and lot.
    form = {"data": _hidden_data(response.text), "reason": REASON}
    confirmed = await post_form(client, f"{URL}/csv/confirm", form)
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == f"{URL}?imported=2"
    assert await Company.count() == companies + 2
    lot_company = await Company.objects().get(Company.org_number == lot_row["orgnr"])
    [lot] = await Lot.objects().where(Lot.company == lot_company.id)
    assert lot.minutes == 90 and lot.expires_on == _days(301)
    plan_company = await Company.objects().get(Company.org_number == plan_row["orgnr"])
    [plan] = await Agreement.objects().where(Agreement.company == plan_company.id)
    assert (plan.starts_on, plan.ends_on) == (_days(-30), _days(150))


async def test_one_bad_row_imports_nothing(client):
    admin = await _admin_client(client)
    good, bad = _row(), _row(avtale_til="2026-02-30", telefon="12")
    data = _csv(good, bad, _row())
    response = await _upload(client, data)
    assert response.status_code == 422
    assert "Rad 3, kolonne «avtale_til»: Skriv datoen som åååå-mm-dd eller dd.mm.åååå." in (
        response.text
    )
    assert "Rad 3, kolonne «telefon»" in response.text
    assert 'name="data"' not in response.text  # nothing to confirm
    # Confirming it anyway (a forged form) checks the file again and imports nothing.
    confirmed = await _confirm(client, data)
    assert confirmed.status_code == 422
    assert await Company.count().where(Company.org_number == good["orgnr"]) == 0
    assert await _imports(actor=admin.id) == []


async def test_duplicates_in_the_file_and_in_the_portal_are_errors(client):
    await _admin_client(client)
    company_id, superuser_email = await make_company("Finnes AS")
    existing = await Company.objects().get(Company.id == company_id)
    first = _row()
    data = _csv(
        first,
        _row(orgnr=first["orgnr"]),
        _row(epost=first["epost"].upper()),
        _row(orgnr=existing.org_number),
        _row(epost=superuser_email),
    )
    text = (await _upload(client, data)).text
    assert "Rad 3, kolonne «orgnr»: Organisasjonsnummeret står på flere rader i filen." in text
    assert "Rad 4, kolonne «epost»: E-postadressen står på flere rader i filen." in text
    assert "Rad 5, kolonne «orgnr»: Organisasjonsnummeret finnes allerede i portalen." in text
    assert "Rad 6, kolonne «epost»: E-postadressen finnes allerede i portalen." in text
    assert await Company.count().where(Company.org_number == first["orgnr"]) == 0


async def test_confirming_twice_imports_once_with_one_audit_entry_per_company(client):
    admin = await _admin_client(client)
    rows = [_row(), _row()]
    data = _csv(*rows)
    assert (await _upload(client, data)).status_code == 200
    assert (await _confirm(client, data)).status_code == 303
    again = await _confirm(client, data)
    assert again.status_code == 303 and again.headers["location"] == f"{URL}?imported=2"
    for row in rows:
        assert await Company.count().where(Company.org_number == row["orgnr"]) == 1
        company = await Company.objects().get(Company.org_number == row["orgnr"])
        [entry] = await _imports(company=company.id)
        assert entry.actor == admin.id and entry.reason == REASON
        assert json.loads(entry.after)["contract"] == "GML-1"
    assert (
        "Importen er gjennomført: 2 firma opprettet."
        in (await client.get(again.headers["location"])).text
    )


async def test_two_confirmations_at_once_import_once():
    admin = await _staff()
    rows = [_row(), _row()]
    form = onboarding.CsvConfirm(data=base64.b64encode(_csv(*rows)).decode(), reason=REASON)
    first, second = await asyncio.gather(
        onboarding.import_csv(admin, form), onboarding.import_csv(admin, form)
    )
    assert first.check is None and second.check is None
    assert sorted(first.company_ids) == sorted(second.company_ids)
    for row in rows:
        assert await Company.count().where(Company.org_number == row["orgnr"]) == 1
    assert len(await _imports(actor=admin.id)) == 2


async def test_two_submits_of_the_form_at_once_onboard_once():
    admin = await _staff()
    form = _form()
    first, second = await asyncio.gather(
        onboarding.onboard(admin, form), onboarding.onboard(admin, form)
    )
    assert first == second
    assert await Company.count().where(Company.org_number == form["org_number"]) == 1
    assert len(await _imports(actor=admin.id)) == 1


async def test_old_mac_line_ends_are_read(client):
    await _admin_client(client)
    row = _row()
    response = await _upload(client, _csv(row).replace(b"\r\n", b"\r"))
    assert response.status_code == 200, response.text
    assert row["firmanavn"] in response.text


async def test_what_changed_since_the_dry_run_is_caught_at_the_confirmation(client):
    await _admin_client(client)
    first, row = _row(), _row()
    data = _csv(first, row)
    assert (await _upload(client, data)).status_code == 200
    # Someone registers the same company meanwhile.
    await Company(
        name="Kom først AS", org_number=row["orgnr"], address="V 1", postal_code="0150", city="Oslo"
    ).save()
    response = await _confirm(client, data)
    assert response.status_code == 422
    assert "Rad 3, kolonne «orgnr»: Organisasjonsnummeret finnes allerede i portalen." in (
        response.text
    )
    assert await Company.count().where(Company.org_number == first["orgnr"]) == 0


async def test_a_comma_separated_file_with_excels_bom_is_read(client):
    await _admin_client(client)
    row = _row(firmanavn="Komma Kunde AS")
    response = await _upload(client, _csv(row, separator=",", bom=True))
    assert response.status_code == 200, response.text
    assert "Komma Kunde AS" in response.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "Filen er ikke en CSV-fil i UTF-8."),
        (b"navn;alder\nOla;3\n", "Kolonner mangler i første linje: orgnr, firmanavn"),
        ((HEADER + ";farge\n").encode(), "Ukjente kolonner i første linje: farge."),
        ((HEADER + "\n").encode(), "Filen har ingen rader med kunder."),
        (b"", "Filen har ingen rader med kunder."),
        (HEADER.encode() + b"\n" + b"x" * (onboarding.MAX_FILE_BYTES + 10), "Filen er for stor"),
        ((HEADER + '\n"123;' + "\n").encode(), "Rad"),
        ((HEADER + "\n1;2;3\n").encode(), "Raden har 3 felt, men første linje har 17."),
        ("æøå".encode("latin-1"), "Filen er ikke en CSV-fil i UTF-8."),
    ],
)
async def test_a_bad_file_gets_a_norwegian_message_and_no_500(client, data, message):
    admin = await _admin_client(client)
    response = await _upload(client, data)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert await _imports(actor=admin.id) == []


async def test_the_import_notice_shows_only_a_number(client):
    await _admin_client(client)
    assert "Importen er gjennomført" not in (await client.get(f"{URL}?imported=hei")).text
    assert "Importen er gjennomført: 3 firma" in (await client.get(f"{URL}?imported=3")).text


async def test_too_many_rows_are_refused(client):
    await _admin_client(client)
    rows = "\n".join(["1;2"] * (onboarding.MAX_ROWS + 1))
    response = await _upload(client, (HEADER + "\n" + rows).encode())
    assert response.status_code == 422
    assert "Filen har mer enn 1000 rader. Del den opp." in response.text


async def test_the_upload_needs_a_file_and_a_reason(client):
    admin = await _admin_client(client)
    token = await csrf_token(client)
    no_file = await client.post(
        f"{URL}/csv", data={"reason": REASON, "_csrf_token": token}, follow_redirects=False
    )
    assert no_file.status_code == 422 and "Velg en CSV-fil." in no_file.text
    no_reason = await _upload(client, _csv(_row()), reason="")
    assert no_reason.status_code == 422 and "Skriv en begrunnelse." in no_reason.text
    broken = await post_form(client, f"{URL}/csv/confirm", {"data": "ikke base64!", "reason": "x"})
    assert broken.status_code == 422
    assert await _imports(actor=admin.id) == []


@pytest.mark.parametrize("role", ["technician", "superuser"])
async def test_technicians_and_customers_are_refused(client, role):
    if role == "technician":
        email = (await _staff("technician")).email
    else:
        _, email = await make_company()
    assert (await login(client, email)).status_code == 303
    data = _csv(_row())
    assert (await client.get(URL)).status_code == 403
    assert (await post_form(client, URL, _form())).status_code == 403
    assert (await _upload(client, data)).status_code == 403
    assert (await _confirm(client, data)).status_code == 403
    assert await _imports(subject=f"csv:{hashlib.sha256(data).hexdigest()}") == []


async def test_the_example_file_in_docs_passes_the_dry_run(client, monkeypatch):
    """docs/examples/eksisterende-kunder.csv, for the demo: a plan and a balance, no errors
    (on the day it was written: its dates are fixed)."""
    example = Path(__file__).parent.parent / "docs" / "examples" / "eksisterende-kunder.csv"
    written = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
    monkeypatch.setattr(clock, "now", lambda: written)
    await _admin_client(client)
    response = await _upload(client, example.read_bytes())
    assert response.status_code == 200, response.text
    assert "Ingen feil" in response.text and "Bekreft og importer 2 firma" in response.text
