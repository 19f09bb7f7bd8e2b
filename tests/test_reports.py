"""The back office's reports (issue 12): each monthly figure is the sum over the ledger, the
paid orders and the outstanding charges, worked out here from the rows themselves; the
follow-up list names exactly the companies to call; the CSV files say what the page says;
only admins see any of it."""

from __future__ import annotations

import csv
import datetime
import io
import re
import secrets
from collections import defaultdict

import pytest

from backend.services import catalog, clock, coverage, ledger, reports
from backend.services.users import create_staff
from backend.tables import (
    Agreement,
    AgreementProduct,
    EntryKind,
    HourlyCharge,
    LedgerEntry,
    Order,
    User,
)
from tests.support import PASSWORD, login, make_company, make_order, make_ticket, new_email

TODAY = datetime.date(2026, 6, 15)
NOW = datetime.datetime(2026, 6, 15, 10, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _in_june(monkeypatch):
    """Time travel: the portal's clock says 15 June 2026."""
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _at(month: int, day: int = 10) -> datetime.datetime:
    return datetime.datetime(2026, month, day, 12, 0, tzinfo=datetime.UTC)


def _days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


async def _admin(client, role: str = "admin") -> User:
    email = new_email(role)
    user = await create_staff(email=email, name=role.title(), role=role, password=PASSWORD)
    await login(client, email)
    return user


async def _dated(entries_of_operation_key: str, when: datetime.datetime) -> None:
    """Move the ledger entries of the operation with this key to `when`."""
    from backend.tables import LedgerOperation

    operation = await LedgerOperation.objects().get(
        LedgerOperation.idempotency_key == entries_of_operation_key
    )
    await LedgerEntry.update({LedgerEntry.created_at: when}).where(
        LedgerEntry.operation == operation.id
    )


async def _lot(company_id, minutes, expires_on, key, when, kind=EntryKind.credit):
    lot = await ledger.credit_lot(
        kind=kind,
        company_id=company_id,
        minutes=minutes,
        expires_on=expires_on,
        product_codes=["inventor"],
        key=key,
        cause=ledger.Cause(type="order"),
    )
    await _dated(key, when)
    return lot


async def _plan(company_id: int, ends_on: datetime.date) -> None:
    agreement = Agreement(
        company=company_id, starts_on=ends_on - datetime.timedelta(days=180), ends_on=ends_on
    )
    await agreement.save()
    await AgreementProduct(agreement=agreement.id, product_code="inventor").save()


async def _paid(company_id: int, kind: str, amount: int, when: datetime.datetime) -> Order:
    order = await make_order(company_id, kind=kind, amount=amount)
    await Order.update({Order.paid_at: when}).where(Order.id == order.id)
    return order


async def _business() -> dict[str, int]:
    """Companies with three months of business (April to June 2026)."""
    await catalog.seed_demo_catalog()
    tag = secrets.token_hex(4)  # the ledger keys of this test's run
    technician = await create_staff(
        email=new_email("tekniker"), name="Tor", role="technician", password=PASSWORD
    )
    ids = {}
    # A: bought 10 hours in April, used 1 t 30 min in May, an admin took 30 min in June;
    # a lot that expired in May; its balance (7 t 30 min) is plenty.
    ids["a"], _ = await make_company("Alfa AS")
    await _paid(ids["a"], "topup", 550_000, _at(4))
    await _lot(ids["a"], 600, _days(200), f"{tag}-rep-a-lot", _at(4))
    await ledger.debit(
        company_id=ids["a"],
        minutes=90,
        on_date=TODAY,
        key=f"{tag}-rep-a-debit",
        cause=ledger.Cause(type="time_entry"),
        product_code="inventor",
    )
    await _dated(f"{tag}-rep-a-debit", _at(5))
    await _lot(ids["a"], 120, TODAY, f"{tag}-rep-a-old", _at(4, 2))
    # 4 hours bought before the portal, onboarded in May: not sold, but in the ledger.
    await _lot(ids["a"], 240, _days(100), f"{tag}-rep-a-import", _at(5, 3), EntryKind.import_)
    await ledger.expire_lots(TODAY, ids["a"])
    await LedgerEntry.update({LedgerEntry.created_at: _at(5, 20)}).where(
        (LedgerEntry.company == ids["a"]) & (LedgerEntry.kind == "expiry")
    )
    await ledger.adjust(
        company_id=ids["a"],
        minutes=-30,
        reason="Feilføring",
        user_id=technician.id,
        key=f"{tag}-rep-a-adjust",
        today=TODAY,
    )
    await _dated(f"{tag}-rep-a-adjust", _at(6, 2))
    # B: a plan bought in June that ends in 45 days: only on the 60-day list.
    ids["b"], _ = await make_company("Bravo AS")
    await _paid(ids["b"], "plan", 300_000, _at(6, 1))
    await _plan(ids["b"], _days(45))
    # C: a lot of 45 minutes ending in 20 days (last usable day in 19): the 30-day list,
    # and below the default threshold of 60 minutes.
    ids["c"], _ = await make_company("Charlie AS")
    await _lot(ids["c"], 45, _days(20), f"{tag}-rep-c-lot", _at(5, 3))
    # D: paid by the hour, no agreement: one charge paid in May, one still open.
    ids["d"], _ = await make_company("Delta AS")
    for subject in ("Første", "Andre"):
        ticket = await make_ticket(ids["d"], subject, product="fusion")
        await coverage.record_time_entry(
            ticket=ticket,
            technician=technician,
            actual=30,
            performed_on=TODAY,
            channel="phone",
            note="",
            key=f"{tag}-rep-d-{subject}",
        )
    await HourlyCharge.update({HourlyCharge.created_at: _at(6, 3)}).where(
        HourlyCharge.company == ids["d"]
    )
    first = await HourlyCharge.objects().where(HourlyCharge.company == ids["d"]).first()
    order = await _paid(ids["d"], "charges", first.amount_ore, _at(5, 5))
    await HourlyCharge.update({HourlyCharge.status: "paid", HourlyCharge.order: order.id}).where(
        HourlyCharge.id == first.id
    )
    # E: a plan that ends in 10 days, with hourly charges: has an agreement, not to sell one.
    ids["e"], _ = await make_company("Echo AS")
    await _plan(ids["e"], _days(10))
    # A cancelled order and a pending one count for nothing.
    await make_order(ids["e"], kind="topup", status="pending", amount=99_900)
    return ids


def _oslo_month(moment: datetime.datetime) -> str:
    return f"{clock.oslo_date(moment):%Y-%m}"


async def _expected() -> dict[str, dict[str, int]]:
    """Each month's figures from the rows, independently of the report's SQL."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in await LedgerEntry.select(
        LedgerEntry.kind, LedgerEntry.minutes, LedgerEntry.created_at
    ):
        figures[_oslo_month(entry["created_at"])][entry["kind"]] += entry["minutes"]
    for order in await Order.select(Order.kind, Order.amount_ore, Order.paid_at).where(
        Order.status == "paid"
    ):
        figures[_oslo_month(order["paid_at"])]["order:" + order["kind"]] += order["amount_ore"]
    for charge in await HourlyCharge.select(HourlyCharge.amount_ore, HourlyCharge.created_at).where(
        HourlyCharge.status == "outstanding"
    ):
        figures[_oslo_month(charge["created_at"])]["open"] += charge["amount_ore"]
    return figures


ROW = re.compile(r'<tr data-month="(\d{4}-\d{2})">(.*?)</tr>', re.S)
CELL = re.compile(r'data-(?:minutes|ore)="(-?\d+)"')
ORDER = ("credit", "import", "debit", "expiry", "refund_write_off", "adjustment", "reversal")


def _page_months(page: str) -> dict[str, list[int]]:
    return {month: [int(v) for v in CELL.findall(cells)] for month, cells in ROW.findall(page)}


def _wanted(month: dict[str, int]) -> list[int]:
    return [
        month["credit"],
        month["import"],
        -month["debit"],
        -month["expiry"],
        -month["refund_write_off"],
        month["adjustment"],
        month["reversal"],
        month["order:plan"],
        month["order:topup"],
        month["order:charges"],
        month["open"],
    ]


async def test_the_monthly_figures_are_sums_over_the_ledger_and_the_orders(client):
    await _business()
    await _admin(client)
    response = await client.get("/staff/admin/reports?from=2026-03&to=2026-06")
    assert response.status_code == 200
    shown = _page_months(response.text)
    assert list(shown) == ["2026-03", "2026-04", "2026-05", "2026-06"]
    expected = await _expected()
    for month, values in shown.items():
        assert values == _wanted(expected[month]), month
    # The business above is in them (not only zeros equal to zeros).
    assert shown["2026-04"][0] >= 720 and shown["2026-05"][1] >= 240 and shown["2026-05"][2] >= 90
    assert shown["2026-05"][3] >= 120 and shown["2026-06"][5] <= -30
    assert shown["2026-06"][7] >= 300_000 and shown["2026-04"][8] >= 550_000
    assert shown["2026-05"][9] > 0 and shown["2026-06"][10] > 0
    # Both charts are drawn on the server.
    assert '<title id="minutes-chart-title">' in response.text
    assert '<title id="revenue-chart-title">' in response.text
    assert 'class="chart-plan"' in response.text


async def test_the_months_csv_says_what_the_page_says(client):
    await _business()
    await _admin(client)
    query = "from=2026-04&to=2026-06"
    shown = _page_months((await client.get(f"/staff/admin/reports?{query}")).text)
    response = await client.get(f"/staff/admin/reports/months.csv?{query}")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][0] == "Måned" and len(rows) == 4
    for row in rows[1:]:
        minutes = [int(value) for value in row[1:8]]
        ore = [int(value.replace(",", "")) for value in row[8:]]
        assert minutes + ore == shown[row[0]], row[0]


async def test_the_follow_up_list_names_exactly_the_companies_to_call(client):
    ids = await _business()
    await _admin(client)
    page = (await client.get("/staff/admin/reports")).text

    def companies_in(table_id: str) -> set[int]:
        start = page.index(f'<table id="{table_id}">')
        table = page[start : page.index("</table>", start)]
        return {int(found) for found in re.findall(r'data-company="(\d+)"', table)}

    ours = set(ids.values())
    assert companies_in("ending-30") & ours == {ids["c"], ids["e"]}
    assert companies_in("ending-60") & ours == {ids["b"], ids["c"], ids["e"]}
    assert companies_in("low-balance") & ours == {ids["c"]}
    assert companies_in("hourly-without-agreement") & ours == {ids["d"]}
    assert f'href="/staff/companies/{ids["d"]}"' in page
    # The lot ending: its last usable day and what it still holds.
    last_day = ledger.last_usable_day(_days(20))
    assert f"{last_day:%d.%m.%Y}" in page
    # The CSV lists the same rows.
    response = await client.get("/staff/admin/reports/follow-up.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff")), delimiter=";"))
    listed = defaultdict(set)
    for row in rows[1:]:
        if int(row[2]) in ours:
            listed[row[0]].add(int(row[2]))
    assert listed == {
        "Slutter innen 30 dager": {ids["c"], ids["e"]},
        "Slutter innen 60 dager": {ids["b"]},
        "Under varslingsgrensen": {ids["c"]},
        "Timepris uten avtale": {ids["d"]},
    }
    charlie = next(row for row in rows if row[2] == str(ids["c"]) and row[3])
    assert charlie[4] == f"{last_day:%d.%m.%Y}" and charlie[5] == "45"


async def test_the_reports_read_a_fixed_number_of_statements(monkeypatch):
    from tests.sql_counter import counted_statements

    await _business()
    with counted_statements(monkeypatch) as few:
        await reports.monthly(reports.months_of(reports.ReportQuery(), TODAY).months)
        await reports.follow_up(TODAY)
    for name in ("Fleire AS", "Flest AS"):
        company_id, _ = await make_company(name)
        await _lot(company_id, 30, _days(15), f"rep-more-{company_id}", _at(3))
    with counted_statements(monkeypatch) as more:
        await reports.monthly(
            reports.months_of(reports.ReportQuery("2024-01", "2026-06"), TODAY).months
        )
        await reports.follow_up(TODAY)
    assert len(more) == len(few) == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=juni", "Skriv måneden som ÅÅÅÅ-MM"),
        ("to=2026-13", "Skriv måneden som ÅÅÅÅ-MM"),
        ("from=2026-06&to=2026-01", "Fra-måneden kan ikke være etter til-måneden."),
        ("from=2020-01&to=2026-06", "Velg høyst 36 måneder."),
        ("from=" + "9" * 500, ""),
        ("from=0000-01", "Skriv måneden som ÅÅÅÅ-MM"),
        ("from=%00%01", ""),  # control characters: ignored, as every query string
    ],
)
async def test_a_bad_range_shows_a_message_and_the_last_12_months(client, query, message):
    await _admin(client)
    response = await client.get(f"/staff/admin/reports?{query}")
    assert response.status_code == 200
    assert message in response.text
    assert len(_page_months(response.text)) == 12
    assert (await client.get(f"/staff/admin/reports/months.csv?{query}")).status_code == 200


def test_an_open_end_gives_twelve_months_from_or_to_it():
    assert reports.months_of(reports.ReportQuery("2025-03", ""), TODAY).months[-1] == (
        datetime.date(2026, 2, 1)
    )
    to = reports.months_of(reports.ReportQuery("", "2025-03"), TODAY).months
    assert to[0] == datetime.date(2024, 4, 1) and len(to) == 12
    default = reports.months_of(reports.ReportQuery(), TODAY).months
    assert default[-1] == datetime.date(2026, 6, 1) and len(default) == 12


@pytest.mark.parametrize("role", ["technician", "superuser", "member"])
async def test_only_admins_see_the_reports(client, role):
    if role == "technician":
        await _admin(client, "technician")
    else:
        company_id, email = await make_company("Kunde AS")
        if role == "member":
            email = new_email("medlem")
            from backend.services.users import hash_password

            await User(
                email=email,
                name="Mia",
                role="member",
                company=company_id,
                password_hash=hash_password(PASSWORD),
            ).save()
        await login(client, email)
    for url in (
        "/staff/admin/reports",
        "/staff/admin/reports/months.csv",
        "/staff/admin/reports/follow-up.csv",
    ):
        assert (await client.get(url, follow_redirects=False)).status_code == 403, url


async def test_a_visitor_is_sent_to_sign_in(client):
    response = await client.get("/staff/admin/reports", follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]


async def test_company_names_that_look_like_formulas_stay_text_in_the_csv(client):
    company_id, _ = await make_company("=HYPERLINK(1) AS")
    await _lot(company_id, 20, _days(5), f"rep-formula-{company_id}", _at(6, 1))
    await _admin(client)
    text = (await client.get("/staff/admin/reports/follow-up.csv")).text
    assert "'=HYPERLINK(1) AS" in text


def test_the_30_and_60_day_lists_count_from_today():
    from backend.services import warnings

    day = datetime.timedelta(days=1)
    assert warnings.ends_soon(TODAY + 29 * day, TODAY, 30)
    assert not warnings.ends_soon(TODAY + 30 * day, TODAY, 30)
    assert warnings.ends_soon(TODAY + 30 * day, TODAY, 60)
    assert warnings.ends_soon(TODAY + 59 * day, TODAY, 60)
    assert not warnings.ends_soon(TODAY + 60 * day, TODAY, 60)
    assert not warnings.ends_soon(TODAY - day, TODAY, 60)


async def test_the_page_costs_the_same_statements_however_many_companies(client, monkeypatch):
    from tests.sql_counter import statements_of

    await _admin(client)
    few = await statements_of(client, "/staff/admin/reports", monkeypatch)
    await _business()
    many = await statements_of(client, "/staff/admin/reports?from=2024-07&to=2026-06", monkeypatch)
    # The session with its user; the monthly figures; the follow-up list.
    assert len(few) == len(many) == 3
