"""The bench's bulk-written history (tests/bench_seed.py) is what the portal's rules would
have written: lots hold the sum of their entries, ended lots are written off, the stored
balances are the ledger's, support is paid as the coverage rule says, and the statement
reads it like any other history."""

from __future__ import annotations

import datetime

from backend.services import catalog, clock, ledger, support_days
from backend.tables import (
    ChargeStatus,
    Coverage,
    HourlyCharge,
    LedgerEntry,
    LedgerOperation,
    Lot,
    SupportDay,
    Ticket,
    TimeEntry,
)
from tests.bench_seed import BENCH_PASSWORD, bulk_company
from tests.support import login, new_email, new_org_number
from tests.test_ledger import _stored_and_recomputed_balances, assert_invariants


async def test_the_bulk_history_follows_the_ledgers_rules(client):
    await catalog.seed_demo_catalog()
    email = new_email("bulk")
    company_id = await bulk_company(60, email=email, org_number=new_org_number(), years=3)
    today = clock.today()

    await assert_invariants(company_id)
    lots = await Lot.objects().where(Lot.company == company_id).order_by(Lot.id)
    assert len(lots) == 37  # every 30 days for three years
    ended = [lot for lot in lots if lot.expires_on <= today]
    assert ended and all(lot.remaining_minutes == 0 for lot in ended)
    stored, recomputed = await _stored_and_recomputed_balances(company_id)
    assert stored == recomputed
    assert stored[-1] == await ledger.balance(company_id, today) > 0

    entries = await TimeEntry.objects().where(TimeEntry.company == company_id)
    debited: dict[str, int] = {}
    for entry in await LedgerEntry.select(LedgerEntry.cause_id, LedgerEntry.minutes).where(
        (LedgerEntry.company == company_id) & (LedgerEntry.kind == "debit")
    ):
        debited[entry["cause_id"]] = debited.get(entry["cause_id"], 0) - entry["minutes"]
    charges = {
        c.time_entry: c
        for c in await HourlyCharge.objects().where(HourlyCharge.company == company_id)
    }
    assert {e.coverage for e in entries} >= {"account", "hourly", "plan"}
    for entry in entries:
        assert debited.get(f"time:{entry.idempotency_key}", 0) == entry.account_minutes
        assert entry.account_minutes + entry.hourly_minutes == (
            0 if entry.coverage == Coverage.plan.value else entry.billed_minutes
        )
        charge = charges.get(entry.id)
        assert (charge.minutes if charge else 0) == entry.hourly_minutes
        if charge:  # paid a month at a time, but for the last two months
            paid = entry.performed_on < today - datetime.timedelta(days=62)
            assert charge.status == (ChargeStatus.paid if paid else ChargeStatus.outstanding)
            assert (charge.order is not None) == paid
    assert any(c.status == ChargeStatus.paid for c in charges.values())
    days: dict[datetime.date, tuple[int, int, int]] = {}
    for entry in entries:
        day = days.get(entry.performed_on, (0, 0, 0))
        days[entry.performed_on] = tuple(
            a + b for a, b in zip(day, support_days.figures(entry), strict=True)
        )
    written = await SupportDay.objects().where(SupportDay.company == company_id)
    assert {d.day: (d.plan_minutes, d.account_minutes, d.hourly_minutes) for d in written} == days
    latest_entry: dict[int, datetime.datetime] = {}
    for entry in entries:
        latest_entry[entry.ticket] = max(
            entry.created_at, latest_entry.get(entry.ticket, entry.created_at)
        )
    for ticket in await Ticket.objects().where(Ticket.company == company_id):
        # The history's order: what activity.record would have kept.
        assert ticket.last_activity_at == max(
            ticket.created_at, latest_entry.get(ticket.id, ticket.created_at)
        )
    operations = await LedgerOperation.count().where(LedgerOperation.company == company_id)
    assert operations == len(stored)

    # The statement's newest row has the account's balance; its CSV has every row.
    assert (await login(client, email, BENCH_PASSWORD)).status_code == 303
    page = (await client.get("/portal/usage")).text
    assert "Vis flere" in page
    everything = await client.get("/portal/usage.csv?period=custom&from=2000-01-01")
    lines = everything.content.decode("utf-8-sig").split("\r\n")[1:-1]
    shown = sum(1 for e in entries if e.account_minutes == 0) + sum(
        1
        for _ in await LedgerOperation.select(LedgerOperation.id).where(
            (LedgerOperation.company == company_id) & (LedgerOperation.moved_minutes > 0)
        )
    )
    assert len(lines) == shown
    assert int(lines[0].split(";")[12]) == stored[-1]
