"""An admin extends a lot's expiry with a reason (issue 12, adjustments and expiry): a
zero-minute ledger entry the customer sees on the statement, an audit entry, once per
submit; the expiry sweep keeps to the new date — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import pytest

from backend.services import catalog, clock, ledger
from backend.services.errors import ValidationFailed
from backend.services.users import create_staff
from backend.tables import AuditEntry, AuditKind, EntryKind, LedgerEntry, Lot, User
from tests.support import PASSWORD, login, make_company, new_email, post_form

REASON = "Kunden var syk i tre måneder"


async def _staff(role: str) -> User:
    return await create_staff(
        email=new_email(role), name=f"Ansatt {role}", role=role, password=PASSWORD
    )


async def _lot(company_id: int, days: int = 30) -> Lot:
    return await ledger.credit_lot(
        company_id=company_id,
        minutes=120,
        expires_on=clock.today() + datetime.timedelta(days=days),
        product_codes=["inventor"],
        key=f"lot-{company_id}-{days}",
        cause=ledger.Cause(type="order"),
    )


def _url(company_id: int) -> str:
    return f"/staff/companies/{company_id}/expiry-extensions"


def _form(lot: Lot, last_day: datetime.date | str, key: str = "ext-1") -> dict:
    day = last_day if isinstance(last_day, str) else last_day.isoformat()
    return {"lot": str(lot.id), "last_day": day, "reason": REASON, "idempotency_key": key}


async def _setup(client):
    await catalog.seed_demo_catalog()
    company_id, superuser_email = await make_company()
    lot = await _lot(company_id)
    admin = await _staff("admin")
    await login(client, admin.email)
    return company_id, superuser_email, lot, admin


async def test_an_extension_is_on_the_customers_statement_with_its_reason(client, other_client):
    company_id, superuser_email, lot, _ = await _setup(client)
    new_last_day = clock.today() + datetime.timedelta(days=200)
    page = await client.get(f"/staff/companies/{company_id}")
    assert "Forleng utløpsdato" in page.text
    assert (await post_form(client, _url(company_id), _form(lot, new_last_day))).status_code == 303

    old_last_day = lot.expires_on - datetime.timedelta(days=1)
    said = f"Utløpsdato forlenget fra {old_last_day:%d.%m.%Y} til {new_last_day:%d.%m.%Y}: {REASON}"
    await login(other_client, superuser_email)
    usage = await other_client.get("/portal/usage")
    assert usage.status_code == 200
    assert said in usage.text
    csv_text = (await other_client.get("/portal/usage.csv")).text
    assert said in csv_text
    # The lot list shows the new date.
    assert f"{new_last_day:%d.%m.%Y}" in (await client.get(f"/staff/companies/{company_id}")).text
    # The balance did not move; the ledger still sums to the lot.
    assert await ledger.balance(company_id, clock.today()) == 120
    assert await ledger.entries_sum_by_lot(company_id) == {lot.id: 120}
    # The admin's reports read the new kind (zero minutes) as they read the others.
    assert (await client.get("/staff/admin/reports")).status_code == 200
    assert (await client.get("/staff/admin/reports/months.csv")).status_code == 200


async def test_the_sweep_keeps_to_the_new_date(client):
    company_id, _, lot, _ = await _setup(client)
    old = lot.expires_on
    new_expires = old + datetime.timedelta(days=60)
    form = _form(lot, new_expires - datetime.timedelta(days=1))
    assert (await post_form(client, _url(company_id), form)).status_code == 303

    assert await ledger.expire_lots(old, company_id) == 0
    assert await ledger.balance(company_id, old) == 120
    assert await ledger.expire_lots(new_expires, company_id) == 120
    assert await ledger.balance(company_id, new_expires) == 0


async def test_a_double_submit_makes_one_entry_and_one_audit_entry(client):
    company_id, _, lot, admin = await _setup(client)
    form = _form(lot, clock.today() + datetime.timedelta(days=100))
    assert (await post_form(client, _url(company_id), form)).status_code == 303
    assert (await post_form(client, _url(company_id), form)).status_code == 303
    entries = await LedgerEntry.objects().where(
        (LedgerEntry.company == company_id) & (LedgerEntry.kind == EntryKind.expiry_extension.value)
    )
    assert len(entries) == 1 and entries[0].minutes == 0
    found = await AuditEntry.objects().where(
        (AuditEntry.company == company_id) & (AuditEntry.kind == AuditKind.expiry_extended.value)
    )
    assert len(found) == 1
    assert found[0].actor == admin.id and found[0].reason == REASON
    assert lot.expires_on.isoformat() in found[0].before
    assert (clock.today() + datetime.timedelta(days=101)).isoformat() in found[0].after


@pytest.mark.parametrize("role", ["technician", "customer"])
async def test_a_technician_and_a_customer_are_refused(client, other_client, role):
    await catalog.seed_demo_catalog()
    company_id, superuser_email = await make_company()
    lot = await _lot(company_id)
    email = superuser_email if role == "customer" else (await _staff("technician")).email
    await login(other_client, email)
    form = _form(lot, clock.today() + datetime.timedelta(days=100))
    assert (await post_form(other_client, _url(company_id), form)).status_code == 403
    assert (await Lot.objects().get(Lot.id == lot.id)).expires_on == lot.expires_on


@pytest.mark.parametrize(
    ("last_day", "message"),
    [
        ("earlier", "Ny utløpsdato må være senere enn den nåværende."),
        ("same", "Ny utløpsdato må være senere enn den nåværende."),
        ("absurd", "Ny utløpsdato kan være høyst to år fram i tid."),
        ("31.02.2027", "Skriv datoen som åååå-mm-dd."),
        ("2027-13-01", "Skriv datoen som åååå-mm-dd."),
        ("", "Velg ny siste gyldige dag."),
    ],
)
async def test_bad_dates_get_a_clear_message_and_change_nothing(client, last_day, message):
    company_id, _, lot, _ = await _setup(client)
    current_last = lot.expires_on - datetime.timedelta(days=1)
    day = {
        "earlier": (current_last - datetime.timedelta(days=5)).isoformat(),
        "same": current_last.isoformat(),
        "absurd": (clock.today() + datetime.timedelta(days=3000)).isoformat(),
    }.get(last_day, last_day)
    response = await post_form(client, _url(company_id), _form(lot, day))
    assert response.status_code == 422
    assert message in response.text
    assert (await Lot.objects().get(Lot.id == lot.id)).expires_on == lot.expires_on
    assert await AuditEntry.objects().where(AuditEntry.company == company_id) == []


async def test_an_expired_lot_cannot_be_extended():
    await catalog.seed_demo_catalog()
    company_id, _ = await make_company()
    lot = await _lot(company_id, days=0)
    admin = await _staff("admin")
    with pytest.raises(ValidationFailed) as caught:
        await ledger.extend_expiry(
            company_id=company_id,
            lot_id=lot.id,
            expires_on=clock.today() + datetime.timedelta(days=30),
            reason=REASON,
            user_id=admin.id,
            key="expired-1",
            today=clock.today(),
        )
    assert caught.value.errors == {"last_day": "Puljen er allerede utløpt og kan ikke forlenges."}
    assert (await Lot.objects().get(Lot.id == lot.id)).expires_on == lot.expires_on


async def test_another_companys_lot_is_not_found(client):
    company_id, _, _, _ = await _setup(client)
    other_id, _ = await make_company("Annet firma AS")
    other_lot = await _lot(other_id)
    form = _form(other_lot, clock.today() + datetime.timedelta(days=100))
    assert (await post_form(client, _url(company_id), form)).status_code == 404
    assert (await Lot.objects().get(Lot.id == other_lot.id)).expires_on == other_lot.expires_on


async def test_an_adjustment_from_the_form_covers_the_chosen_products_and_shows_its_reason(
    client, other_client
):
    company_id, superuser_email, _, _ = await _setup(client)
    url = f"/staff/companies/{company_id}/adjustments"
    form = {"minutes": "45", "reason": "Gave for ventetid", "idempotency_key": "adj-form-1"}
    # A credit must name the products it pays for.
    refused = await post_form(client, url, form)
    assert refused.status_code == 422
    assert "Velg hvilke produkter minuttene skal dekke." in refused.text
    assert (await post_form(client, url, {**form, "products": ["inventor"]})).status_code == 303
    [lot] = await ledger.lots_paying_for(
        company_id, "inventor", clock.today() + datetime.timedelta(days=40)
    )
    assert lot.remaining_minutes == 45

    await login(other_client, superuser_email)
    assert "Gave for ventetid" in (await other_client.get("/portal/usage")).text


@pytest.mark.parametrize("lot", ["", "abc", "1e3", "١", "99999999999999999999"])
async def test_a_strange_lot_field_is_a_clear_message_never_a_500(client, lot):
    company_id, _, real_lot, _ = await _setup(client)
    form = {**_form(real_lot, clock.today() + datetime.timedelta(days=100)), "lot": lot}
    response = await post_form(client, _url(company_id), form)
    assert response.status_code == 422
    assert "Velg en pulje." in response.text
    assert await AuditEntry.objects().where(AuditEntry.company == company_id) == []
