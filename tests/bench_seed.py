"""A benchmark company with realistic history, for `make bench` (not a test).

    DATABASE_URL=... .venv/bin/python -m tests.bench_seed [tickets]

Five years of a customer that buys prepaid hours three times a year and a "Fri support" plan
for Fusion in the last year: `tickets` tickets (default 500) with a short thread each and about
seven time entries each, logged through the coverage rule as a technician would (so the ledger,
lots, expiries and hourly charges are what the portal itself would have written: about 3 000
ledger entries for 500 tickets). Prints the e-mail and password of the superuser.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import sys

BENCH_EMAIL = "benk@benk.no"
BENCH_PASSWORD = "benk-passord-1"
YEARS = 5
ENTRIES_PER_TICKET = 7
LOT_HOURS = 120
PREPAID = ["inventor", "acad-mech", "vault", "inventor-cam"]
# Most support is on the prepaid products; Fusion falls to the plan (last year) or hourly.
PRODUCTS = (*PREPAID, *PREPAID, "fusion")


async def seed(tickets: int) -> None:
    from backend.cli import migrate
    from backend.db import write_transaction
    from backend.services import catalog
    from backend.tables import Company

    await migrate()
    await catalog.seed_demo_catalog()
    # One transaction: thousands of commits (each an fsync on PostgreSQL) would take minutes.
    async with write_transaction(Company._meta.db):
        await history(tickets)
    # Planner statistics, as autovacuum (PostgreSQL) would have them a minute later: without
    # them the first minutes of a fresh database run on guesses (twice the time for a page).
    await Company._meta.db.run_ddl("ANALYZE")
    print(f"{BENCH_EMAIL} {BENCH_PASSWORD}")


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


SUBJECTS = (
    "Skissen låser seg",
    "Lisensen aktiveres ikke",
    "Vault sjekker ikke inn",
    "Verktøybane mangler",
    "Tegning skrives ut feil",
    "Import av STEP feiler",
)
OPEN_STATUSES = ("open", "in_progress", "waiting_for_customer")


if __name__ == "__main__":
    asyncio.run(seed(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
