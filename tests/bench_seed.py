"""Benchmark companies with realistic history, for `make bench` (not a test).

    DATABASE_URL=... .venv/bin/python -m tests.bench_seed [large tickets]

Two companies with five years of history each, written in bulk (`bulk_company`): a small one
(SMALL_TICKETS tickets) and a large one (LARGE_TICKETS tickets, about 500 000 ledger entries).
Each ticket has a short thread and four to eight time entries; the history is what the
portal's rules would have written, played through in time order: prepaid hours every month
(each lot valid one year, debited first to expire first, its unused minutes written
off by an expiry entry when it ends), a "Fri support" plan for Fusion in the last year, hourly
support (paid a month later, but for the last two months) where nothing else covers it, every
ledger operation with the balance after it. tests/test_bench_seed.py checks the rules hold.

`history` writes a company through the services one call at a time instead (slow; used by
tests/test_query_counts.py).
"""

from __future__ import annotations

import asyncio
import datetime
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

BENCH_PASSWORD = "benk-passord-1"
SMALL_EMAIL = "liten@benk.no"
LARGE_EMAIL = "stor@benk.no"
BENCH_EMAIL = SMALL_EMAIL
SMALL_TICKETS = 100
LARGE_TICKETS = 100_000
YEARS = 5
ENTRIES_PER_TICKET = 7
LOT_HOURS = 120
PREPAID = ["inventor", "acad-mech", "vault", "inventor-cam"]
# Most support is on the prepaid products; Fusion falls to the plan (last year) or hourly.
PRODUCTS = (*PREPAID, *PREPAID, "fusion")
# In bulk, prepaid hours are bought once a month, as many as the month's support takes
# (a large company's four months would cost more than an order's amount can hold).
BUY_EVERY_DAYS = 30


async def seed(large_tickets: int = LARGE_TICKETS) -> None:
    from piccolo.engine.postgres import PostgresEngine

    from backend.cli import migrate
    from backend.services import catalog
    from backend.tables import Company

    await migrate()
    await catalog.seed_demo_catalog()
    await bulk_company(SMALL_TICKETS, email=SMALL_EMAIL, org_number="974760673")
    await bulk_company(large_tickets, email=LARGE_EMAIL, org_number="923609016", name="Stor")
    # Planner statistics and (PostgreSQL) the visibility map, as autovacuum would have them
    # a few minutes later: without them the first minutes run on guesses, or beside a vacuum
    # of two million fresh rows.
    engine = Company._meta.db
    await engine.run_ddl("VACUUM ANALYZE" if isinstance(engine, PostgresEngine) else "ANALYZE")
    print(f"{SMALL_EMAIL} {LARGE_EMAIL} {BENCH_PASSWORD}")


async def history(
    tickets: int,
    *,
    years: int = YEARS,
    email: str = BENCH_EMAIL,
    org_number: str = "974760673",
) -> int:
    """A company whose superuser (`email`) has `years` of history and `tickets` tickets;
    also used by tests/test_query_counts.py. Returns the company's id."""
    from backend.services import agreements, clock, coverage, ledger
    from backend.services.users import hash_password
    from backend.tables import (
        Company,
        Order,
        OrderKind,
        OrderStatus,
        Role,
        Ticket,
        TicketMessage,
        TicketStatus,
        User,
    )

    rng = random.Random(2026)
    today = clock.today()
    start = today - datetime.timedelta(days=365 * years)
    company = Company(
        name="Benk Maskinering AS",
        org_number=org_number,
        address="Verkstedveien 1",
        postal_code="7030",
        city="Trondheim",
    )
    await company.save()
    superuser = User(
        email=email,
        name="Berit Benk",
        phone="+4773123456",
        role=Role.superuser.value,
        company=company.id,
        password_hash=hash_password(BENCH_PASSWORD),
    )
    await superuser.save()
    technician = User(
        email=f"tekniker.{email}",
        name="Tor Tekniker",
        role=Role.technician.value,
        password_hash=hash_password(BENCH_PASSWORD),
    )
    await technician.save()

    # Prepaid hours three times a year, each lot valid one year.
    bought = start
    while bought <= today:
        order = Order(
            company=company.id,
            created_by=superuser.id,
            kind=OrderKind.topup.value,
            status=OrderStatus.paid.value,
            hours=LOT_HOURS,
            product_codes=",".join(PREPAID),
            amount_ore=LOT_HOURS * 110_000,
            mva_ore=LOT_HOURS * 27_500,
            total_ore=LOT_HOURS * 137_500,
            paid_at=datetime.datetime.combine(bought, datetime.time(10), datetime.UTC),
        )
        await order.save()
        await ledger.credit_lot(
            company_id=company.id,
            minutes=LOT_HOURS * 60,
            expires_on=ledger.lot_expires_on(bought),
            product_codes=PREPAID,
            key=f"order:{order.id}",
            cause=ledger.Cause(type="order", id=str(order.id)),
            order_id=order.id,
        )
        bought += datetime.timedelta(days=122)
    # "Fri support" for Fusion, two periods in a row, the second running now.
    first = agreements.plan_period(today - datetime.timedelta(days=300))
    second = agreements.plan_period(first[1] + datetime.timedelta(days=1))
    for starts_on, ends_on in (first, second):
        await agreements.create_plan(
            company_id=company.id, product_codes=["fusion"], starts_on=starts_on, ends_on=ends_on
        )

    days = (today - start).days
    for n in range(tickets):
        opened_on = start + datetime.timedelta(days=days * n // max(tickets, 1))
        opened_at = datetime.datetime.combine(opened_on, datetime.time(9), datetime.UTC)
        old = opened_on < today - datetime.timedelta(days=30)
        ticket = Ticket(
            company=company.id,
            product_code=rng.choice(PRODUCTS),
            subject=f"Sak {n + 1}: {rng.choice(SUBJECTS)}",
            description="Beskrivelse av problemet, med trinn for å gjenskape det.",
            channel=rng.choice(("web", "phone", "mail")),
            status=TicketStatus.closed.value if old else rng.choice(OPEN_STATUSES),
            opened_by=superuser.id,
            created_at=opened_at,
            waiting_since=opened_at,
        )
        await ticket.save()
        await TicketMessage.insert(
            TicketMessage(ticket=ticket.id, author=superuser.id, body="Hei, vi trenger hjelp."),
            TicketMessage(ticket=ticket.id, author=technician.id, body="Vi ser på det."),
        )
        for m in range(ENTRIES_PER_TICKET):
            performed_on = min(opened_on + datetime.timedelta(days=m), today)
            await coverage.record_time_entry(
                ticket=ticket,
                technician=technician,
                actual=rng.choice((10, 15, 20, 25, 30, 45)),
                performed_on=performed_on,
                channel="phone",
                note="Arbeid på saken",
                key=f"bench:{ticket.id}:{m}",
            )
    await ledger.expire_lots(today)
    return company.id


# --- in bulk --------------------------------------------------------------------------


@dataclass
class _Lot:
    id: int
    minutes: int
    remaining: int
    expires_on: datetime.date


@dataclass
class _Rows:
    """The rows of one company, table by table, with their ids given here."""

    next_ids: dict[str, int]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: type, **values: Any) -> int:
        name = table._meta.tablename
        values.setdefault("id", self.next_ids.get(name, 1))
        self.next_ids[name] = values["id"] + 1
        self.tables.setdefault(name, []).append(values)
        return values["id"]


def _at(day: datetime.date, seconds: int) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(6), datetime.UTC) + datetime.timedelta(
        seconds=seconds
    )


async def bulk_company(
    tickets: int,
    *,
    email: str,
    org_number: str,
    name: str = "Benk",
    years: int = YEARS,
    seed: int = 2026,
) -> int:
    """A company with `years` of history and `tickets` tickets, written in bulk (see the
    module's docstring); its superuser signs in with `email` and BENCH_PASSWORD. Returns the
    company's id."""
    from backend.services import agreements, clock, coverage, ledger
    from backend.services.users import hash_password
    from backend.tables import (
        ChargeStatus,
        Company,
        Coverage,
        EntryKind,
        HourlyCharge,
        LedgerEntry,
        LedgerOperation,
        Lot,
        LotProduct,
        Order,
        OrderKind,
        OrderStatus,
        PriceList,
        Role,
        SupportDay,
        Ticket,
        TicketMessage,
        TicketStatus,
        TimeEntry,
        User,
    )

    tables = (
        Company,
        User,
        Order,
        Lot,
        LotProduct,
        LedgerOperation,
        LedgerEntry,
        Ticket,
        TicketMessage,
        TimeEntry,
        HourlyCharge,
        SupportDay,
    )
    rows = _Rows(next_ids=await _next_ids(tables))
    rng = random.Random(seed)
    now = clock.now()
    today = clock.today()
    start = today - datetime.timedelta(days=365 * years)
    days = (today - start).days
    rate = (await PriceList.select(PriceList.hourly_rate_ore).first())["hourly_rate_ore"]

    company_id = rows.add(
        Company,
        name=f"{name} Maskinering AS",
        org_number=org_number,
        address="Verkstedveien 1",
        postal_code="7030",
        city="Trondheim",
        created_at=_at(start, 0),
    )
    password_hash = hash_password(BENCH_PASSWORD)
    superuser = rows.add(
        User,
        email=email,
        name=f"Berit {name}",
        phone="+4773123456",
        role=Role.superuser.value,
        company=company_id,
        password_hash=password_hash,
    )
    technician = rows.add(
        User,
        email=f"tekniker.{email}",
        name="Tor Tekniker",
        role=Role.technician.value,
        password_hash=password_hash,
    )
    plans = [agreements.plan_period(today - datetime.timedelta(days=300))]
    plans.append(agreements.plan_period(plans[0][1] + datetime.timedelta(days=1)))

    # The support to come, and the lots bought to pay for it: one a month, each about what
    # the next month of support on the prepaid products takes.
    entries = []  # (performed_on, ticket index, entry number, actual minutes)
    ticket_rows = []
    for n in range(tickets):
        opened_on = start + datetime.timedelta(days=days * n // max(tickets, 1))
        ticket_rows.append((opened_on, rng.choice(PRODUCTS)))
        for m in range(rng.randint(4, 8)):
            performed_on = min(opened_on + datetime.timedelta(days=m), today)
            entries.append((performed_on, n, m, rng.choice((10, 15, 20, 25, 30, 45))))
    per_day = sum(coverage.billed_minutes(e[3]) for e in entries) * 8 / 9 / max(days, 1)
    events: list[tuple[datetime.datetime, int, Any]] = []  # (at, order, what)
    bought = start
    while bought <= today:
        hours = max(10, math.ceil(per_day * BUY_EVERY_DAYS * rng.uniform(0.85, 1.1) / 60))
        events.append((_at(bought, 3600 * 4), 0, ("credit", bought, hours)))
        expires_on = ledger.lot_expires_on(bought)
        if expires_on <= today:
            # The hourly sweep's write-off, early on the day the lot ends.
            events.append((_at(expires_on, -3600 * 5), 1, ("expiry",)))
        bought += datetime.timedelta(days=BUY_EVERY_DAYS)
    logged: dict[int, datetime.datetime] = {}  # ticket index → its latest time entry
    for number, entry in enumerate(entries):
        at = min(_at(entry[0], 3600 * 2 + 60 * entry[2] + number % 3600), now)
        events.append((at, 2, ("support", entry)))
        logged[entry[1]] = max(at, logged.get(entry[1], at))
    events.sort(key=lambda event: (event[0], event[1]))

    ticket_ids = []
    for n, (opened_on, product) in enumerate(ticket_rows):
        opened_at = _at(opened_on, 3600 * 2 + n % 3600)
        old = opened_on < today - datetime.timedelta(days=30)
        status = TicketStatus.closed.value if old else rng.choice(OPEN_STATUSES)
        ticket_id = rows.add(
            Ticket,
            company=company_id,
            product_code=product,
            subject=f"Sak {n + 1}: {rng.choice(SUBJECTS)}",
            description="Beskrivelse av problemet, med trinn for å gjenskape det.",
            channel=rng.choice(("web", "phone", "mail")),
            status=status,
            opened_by=superuser,
            created_at=opened_at,
            last_activity_at=max(opened_at, logged.get(n, opened_at)),
            waiting_since=opened_at if status in ("open", "in_progress") else None,
        )
        ticket_ids.append(ticket_id)
        for author, body in ((superuser, "Hei, vi trenger hjelp."), (technician, "Vi ser på det.")):
            rows.add(
                TicketMessage, ticket=ticket_id, author=author, body=body, created_at=opened_at
            )

    lots: list[_Lot] = []
    balance = 0
    unpaid: dict[datetime.date, list[int]] = {}  # month → hourly charges paid together
    support: dict[datetime.date, list[int]] = {}  # day → plan, account, hourly minutes

    def operation(at, kind, key, requested, moved_entries) -> None:
        nonlocal balance
        moved = sum(minutes for _, minutes, _ in moved_entries)
        balance += moved
        op = rows.add(
            LedgerOperation,
            idempotency_key=key,
            company=company_id,
            kind=kind.value,
            requested_minutes=requested,
            moved_minutes=abs(moved),
            balance_after=balance,
            created_at=at,
        )
        for part, (lot, minutes, cause) in enumerate(moved_entries, 1):
            rows.add(
                LedgerEntry,
                company=company_id,
                lot=lot.id,
                operation=op,
                kind=kind.value,
                minutes=minutes,
                idempotency_key=f"{key}:{part}",
                cause_type=cause[0],
                cause_id=cause[1],
                note=cause[2],
                created_at=at,
            )

    expiry_number = 0
    for at, _, what in events:
        if what[0] == "credit":
            _, bought_on, hours = what
            order = rows.add(
                Order,
                company=company_id,
                created_by=superuser,
                kind=OrderKind.topup.value,
                status=OrderStatus.paid.value,
                hours=hours,
                product_codes=",".join(PREPAID),
                amount_ore=hours * 110_000,
                mva_ore=hours * 27_500,
                total_ore=hours * 137_500,
                created_at=at - datetime.timedelta(minutes=5),
                paid_at=at,
            )
            lot = _Lot(rows.next_ids.get("time_lot", 1), hours * 60, hours * 60, bought_on)
            lot.expires_on = ledger.lot_expires_on(bought_on)
            rows.add(
                Lot,
                id=lot.id,
                company=company_id,
                order=order,
                minutes=lot.minutes,
                remaining_minutes=0,  # set below, from the entries
                expires_on=lot.expires_on,
                created_at=at,
            )
            for code in PREPAID:
                rows.add(LotProduct, lot=lot.id, product_code=code)
            lots.append(lot)
            operation(
                at,
                EntryKind.credit,
                f"order:{order}",
                lot.minutes,
                [(lot, lot.minutes, ("order", str(order), ""))],
            )
        elif what[0] == "expiry":
            lot = lots[expiry_number]
            expiry_number += 1
            if lot.remaining:
                minutes, lot.remaining = lot.remaining, 0
                key = f"expiry:{lot.id}:{lot.expires_on.isoformat()}:{minutes}"
                operation(at, EntryKind.expiry, key, 0, [(lot, -minutes, ("system", "", "Utløpt"))])
        else:
            performed_on, n, m, actual = what[1]
            billed = coverage.billed_minutes(actual)
            product = ticket_rows[n][1]
            usable = [lot for lot in lots if lot.remaining > 0 and lot.expires_on > performed_on]
            in_plan = any(first <= performed_on <= last for first, last in plans)
            key = f"bench:{company_id}:{n}:{m}"
            account = 0
            if product == "fusion" and in_plan:
                decision = Coverage.plan
            elif product != "fusion" and usable:
                taken = []
                for lot in sorted(usable, key=lambda lot: (lot.expires_on, lot.id)):
                    part = min(billed - account, lot.remaining)
                    if part:
                        lot.remaining -= part
                        account += part
                        taken.append((lot, -part, ("time_entry", f"time:{key}", "")))
                operation(at, EntryKind.debit, f"time:{key}", billed, taken)
                decision = Coverage.account if account == billed else Coverage.split
            else:
                decision = Coverage.hourly
            hourly = 0 if decision in (Coverage.plan, Coverage.account) else billed - account
            amount = coverage.hourly_amount_ore(hourly, rate)
            entry = rows.add(
                TimeEntry,
                ticket=ticket_ids[n],
                company=company_id,
                technician=technician,
                performed_on=performed_on,
                channel="phone",
                note="Arbeid på saken",
                actual_minutes=actual,
                billed_minutes=billed,
                coverage=decision.value,
                account_minutes=account,
                hourly_minutes=hourly,
                hourly_amount_ore=amount,
                idempotency_key=key,
                created_at=at,
            )
            day = support.setdefault(performed_on, [0, 0, 0])
            day[0] += billed if decision == Coverage.plan else 0
            day[1] += account
            day[2] += hourly
            if hourly:
                charge = rows.add(
                    HourlyCharge,
                    company=company_id,
                    time_entry=entry,
                    minutes=hourly,
                    amount_ore=amount,
                    created_at=at,
                )
                month = performed_on.replace(day=1)
                if performed_on < today - datetime.timedelta(days=62):
                    unpaid.setdefault(month, []).append(charge)
    # Hourly support is paid a month at a time, by an order of its own.
    charges = {row["id"]: row for row in rows.tables.get("hourly_charge", [])}
    for month, charge_ids in unpaid.items():
        amount = sum(charges[c]["amount_ore"] for c in charge_ids)
        paid_at = _at(agreements.add_months(month, 1), 3600 * 3)
        order = rows.add(
            Order,
            company=company_id,
            created_by=superuser,
            kind=OrderKind.charges.value,
            status=OrderStatus.paid.value,
            amount_ore=amount,
            mva_ore=amount // 4,
            total_ore=amount + amount // 4,
            created_at=paid_at - datetime.timedelta(minutes=5),
            paid_at=paid_at,
        )
        for c in charge_ids:
            charges[c].update(status=ChargeStatus.paid.value, order=order)
    for day, (plan, account, hourly) in sorted(support.items()):
        rows.add(
            SupportDay,
            company=company_id,
            day=day,
            plan_minutes=plan,
            account_minutes=account,
            hourly_minutes=hourly,
        )
    remaining = {lot.id: lot.remaining for lot in lots}
    for row in rows.tables.get("time_lot", []):
        row["remaining_minutes"] = remaining[row["id"]]

    await _write(rows, tables)
    for starts_on, ends_on in plans:
        await agreements.create_plan(
            company_id=company_id, product_codes=["fusion"], starts_on=starts_on, ends_on=ends_on
        )
    return company_id


async def _next_ids(tables: Sequence[type]) -> dict[str, int]:
    from backend.db import fetch

    found = {}
    for table in tables:
        name = table._meta.tablename
        [row] = await fetch(table, f"SELECT coalesce(max(id), 0) + 1 AS next FROM {name}")
        found[name] = int(row["next"])
    return found


def _default(column: Any) -> Any:
    value = column.get_default_value()
    return value.python() if hasattr(value, "python") else value


async def _write(rows: _Rows, tables: Sequence[type]) -> None:
    """Every row at once: COPY on PostgreSQL, executemany in one transaction on SQLite."""
    from piccolo.engine.postgres import PostgresEngine

    engine = tables[0]._meta.db
    batches = []
    for table in tables:
        found = rows.tables.get(table._meta.tablename, [])
        if not found:
            continue
        columns = [column._meta.db_column_name for column in table._meta.columns]
        defaults = {column._meta.db_column_name: _default(column) for column in table._meta.columns}
        records = [tuple(row.get(c, defaults[c]) for c in columns) for row in found]
        batches.append((table._meta.tablename, columns, records))
    if isinstance(engine, PostgresEngine):
        import asyncpg

        connection = await asyncpg.connect(**engine.config)
        try:
            async with connection.transaction():
                for name, columns, records in batches:
                    await connection.copy_records_to_table(name, records=records, columns=columns)
                    await connection.execute(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT max(id) FROM {name}))"
                    )
        finally:
            await connection.close()
        return
    import sqlite3

    connection = sqlite3.connect(engine.path, timeout=30)
    try:
        with connection:
            for name, columns, records in batches:
                names = ", ".join(f'"{column}"' for column in columns)
                marks = ", ".join("?" for _ in columns)
                connection.executemany(f"INSERT INTO {name} ({names}) VALUES ({marks})", records)
    finally:
        connection.close()


SUBJECTS = (
    "Skissen låser seg",
    "Lisensen aktiveres ikke",
    "Vault sjekker ikke inn",
    "Verktøybane mangler",
    "Tegning skrives ut feil",
    "Import av STEP feiler",
)
OPEN_STATUSES = ("open", "in_progress", "waiting_for_customer")
THREAD = (("customer", "Hei, vi trenger hjelp."), ("technician", "Vi ser på det."))


if __name__ == "__main__":
    asyncio.run(seed(int(sys.argv[1]) if len(sys.argv) > 1 else LARGE_TICKETS))
