"""SPEC §5 across processes: two served portals on the run's database (SQLite or PostgreSQL),
technicians logging time on both at once, and the ledger checked afterwards.

What tests/bench_concurrency.py prints as figures, asserted here through real HTTP requests:
each portal is `portal serve` (uvicorn) in a process of its own, so neither SQLite's
in-process write queue nor a shared connection pool can hide a lost update."""

from __future__ import annotations

import asyncio
import datetime
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from backend.services import catalog, clock, ledger
from backend.services.users import create_staff
from backend.tables import EntryKind, HourlyCharge, LedgerEntry, Lot, TimeEntry
from tests.support import PASSWORD, make_company, make_ticket, new_email

ENTRIES = 50
# Billed 15, 30, 30 and 45 minutes (rounded up to the next quarter hour): 1 500 in all, more
# than the account holds, so the last entries are split or billed hourly.
ACTUAL_MINUTES = (10, 20, 30, 40)
BILLED = {10: 15, 20: 30, 30: 30, 40: 45}


async def _sign_in(client: httpx.AsyncClient, email: str) -> str:
    """Signs a technician in on one portal; returns the CSRF token for its forms."""
    token = await _csrf(client, "/login")
    response = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "_csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return await _csrf(client, "/staff")


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    html = (await client.get(path)).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, f"no csrf meta tag on {path}"
    return match.group(1)


@pytest.fixture
async def technicians(live_server: str, twin_server: str) -> AsyncIterator[list]:
    """One signed-in technician's browser on each portal: [(client, csrf token), ...]."""
    email = new_email("tekniker")
    await create_staff(email=email, name="Tekniker To", role="technician", password=PASSWORD)
    limits = httpx.Limits(max_connections=ENTRIES, max_keepalive_connections=ENTRIES)
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=120, limits=limits) as first,
        httpx.AsyncClient(base_url=twin_server, timeout=120, limits=limits) as second,
    ):
        yield [(first, await _sign_in(first, email)), (second, await _sign_in(second, email))]


async def _log_time(browser: tuple, ticket_id: int, actual: int, key: str) -> httpx.Response:
    client, token = browser
    return await client.post(
        f"/staff/tickets/{ticket_id}/time",
        data={
            "minutes": str(actual),
            "performed_on": clock.today().isoformat(),
            "channel": "phone",
            "note": "Samtidig føring",
            "idempotency_key": key,
            "_csrf_token": token,
        },
    )


async def _ledger_state(company_id: int) -> dict:
    lots = await Lot.objects().where(Lot.company == company_id).order_by(Lot.id)
    return {
        "lots": [(lot.id, lot.remaining_minutes) for lot in lots],
        "entries": await LedgerEntry.count().where(LedgerEntry.company == company_id),
        "time_entries": await TimeEntry.count().where(TimeEntry.company == company_id),
        "charges": await HourlyCharge.count().where(HourlyCharge.company == company_id),
    }


async def test_fifty_time_entries_at_once_on_two_portals_keep_the_ledger_exact(technicians):
    await catalog.seed_demo_catalog()
    company_id, _ = await make_company("Tospann AS")
    ticket = await make_ticket(company_id, "Samtidig støtte", opened_days_ago=30)

    async def credit(minutes: int, days: int, products: list[str]) -> Lot:
        return await ledger.credit_lot(
            company_id=company_id,
            minutes=minutes,
            expires_on=clock.today() + datetime.timedelta(days=days),
            product_codes=products,
            key=f"mp:{company_id}:{minutes}:{days}",
            cause=ledger.Cause(type="admin"),
        )

    # Two lots pay for Inventor (the one that expires first is used first); one pays only for
    # Vault, so no Inventor support may touch it.
    soon = await credit(200, 30, ["inventor"])
    later = await credit(250, 300, ["inventor", "vault"])
    vault_only = await credit(120, 200, ["vault"])
    inventor_minutes = soon.minutes + later.minutes

    keys = [secrets.token_urlsafe(18) for _ in range(ENTRIES)]
    actual = {key: ACTUAL_MINUTES[n % len(ACTUAL_MINUTES)] for n, key in enumerate(keys)}
    billed_total = sum(BILLED[minutes] for minutes in actual.values())
    assert billed_total > inventor_minutes  # the account runs dry under the load

    responses = await asyncio.gather(
        *(_log_time(technicians[n % 2], ticket.id, actual[key], key) for n, key in enumerate(keys))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {303: ENTRIES}, statuses

    # One entry per key, billed by the rounding rule; nothing logged twice.
    entries = await TimeEntry.objects().where(TimeEntry.ticket == ticket.id)
    assert sorted(e.idempotency_key for e in entries) == sorted(
        f"t{ticket.id}:{key}" for key in keys
    )
    for entry in entries:
        assert entry.billed_minutes == BILLED[entry.actual_minutes]
        assert entry.account_minutes + entry.hourly_minutes == entry.billed_minutes
        assert entry.account_minutes >= 0 and entry.hourly_minutes >= 0

    # Each lot's remaining minutes are the sum of its ledger entries, and none is negative.
    lots = {lot.id: lot for lot in await Lot.objects().where(Lot.company == company_id)}
    sums = await ledger.entries_sum_by_lot(company_id)
    assert {lot_id: lot.remaining_minutes for lot_id, lot in lots.items()} == sums
    assert all(lot.remaining_minutes >= 0 for lot in lots.values())
    # More was asked than the Inventor lots held: they are empty, the Vault lot is untouched.
    assert lots[soon.id].remaining_minutes == lots[later.id].remaining_minutes == 0
    assert lots[vault_only.id].remaining_minutes == vault_only.minutes
    # The balance is the sum of the unexpired lots.
    unexpired = sum(
        lot.remaining_minutes for lot in lots.values() if lot.expires_on > clock.today()
    )
    assert await ledger.balance(company_id, clock.today()) == unexpired == vault_only.minutes

    # Debited + hourly = what was logged; every debited minute is one an entry accounts for.
    account_total = sum(e.account_minutes for e in entries)
    hourly_total = sum(e.hourly_minutes for e in entries)
    assert account_total + hourly_total == billed_total
    assert account_total == inventor_minutes
    debits = await LedgerEntry.objects().where(
        (LedgerEntry.company == company_id) & (LedgerEntry.kind == EntryKind.debit.value)
    )
    debited_by_entry: Counter[str] = Counter()
    for debit in debits:
        debited_by_entry[debit.cause_id] -= debit.minutes
    assert debited_by_entry == Counter(
        {f"time:{e.idempotency_key}": e.account_minutes for e in entries if e.account_minutes}
    )
    # Each hourly minute is one outstanding charge of its own entry.
    charges = await HourlyCharge.objects().where(HourlyCharge.company == company_id)
    assert Counter({c.time_entry: c.minutes for c in charges}) == Counter(
        {e.id: e.hourly_minutes for e in entries if e.hourly_minutes}
    )

    # Every form sent again at once, each to the other portal (a retry after a lost answer):
    # nothing moves.
    before = await _ledger_state(company_id)
    replies = await asyncio.gather(
        *(
            _log_time(technicians[(n + 1) % 2], ticket.id, actual[key], key)
            for n, key in enumerate(keys)
        )
    )
    assert Counter(r.status_code for r in replies) == {303: ENTRIES}
    assert await _ledger_state(company_id) == before
