"""Concurrency figures for the closing notes (not a test: it prints, it asserts nothing).

    .venv/bin/python -m tests.bench_concurrency     # a fresh SQLite file
    createdb -h 127.0.0.1 -U postgres bench
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python -m \
        tests.bench_concurrency

Logs N simultaneous 15-minute time entries against a 300-minute time account, split over
PROCESSES processes (real concurrent connections), then reads back how they were covered.
"""

from __future__ import annotations

import asyncio
import datetime
import multiprocessing
import os
import tempfile
import time

ENTRIES = 50
PROCESSES = 2


def _setup_database() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    os.environ["DATABASE_URL"] = url
    return url


async def _prepare() -> tuple[int, int]:
    from backend.cli import migrate
    from backend.services import catalog, clock, ledger
    from backend.tables import Role, Ticket, User
    from tests.support import make_company

    await migrate()
    await catalog.seed_demo_catalog()
    company_id, email = await make_company("Benk AS")
    user = await User.objects().get(User.email == email)
    ticket = Ticket(
        company=company_id,
        product_code="inventor",
        subject="Benk",
        description="-",
        channel="phone",
        opened_by=user.id,
    )
    await ticket.save()
    await User.update({User.role: Role.technician.value}).where(User.id == user.id)
    await ledger.credit_lot(
        company_id=company_id,
        minutes=300,
        expires_on=clock.today() + datetime.timedelta(days=365),
        product_codes=["inventor"],
        key=f"bench:{company_id}",
        cause=ledger.Cause(type="admin"),
    )
    return ticket.id, user.id


def _worker(ticket_id: int, user_id: int, keys: list[str], start_at: float) -> None:
    async def run() -> None:
        from backend.services import clock, coverage
        from backend.tables import Ticket, User

        ticket = await Ticket.objects().get(Ticket.id == ticket_id)
        user = await User.objects().get(User.id == user_id)
        time.sleep(max(0.0, start_at - time.time()))  # all processes start together
        await asyncio.gather(
            *(
                coverage.record_time_entry(
                    ticket=ticket,
                    technician=user,
                    actual=15,
                    performed_on=clock.today(),
                    channel="phone",
                    note="",
                    key=key,
                )
                for key in keys
            )
        )

    asyncio.run(run())


async def _report(ticket_id: int, company_id: int, seconds: float) -> None:
    from backend.services import clock, ledger
    from backend.tables import Lot, TimeEntry

    entries = await TimeEntry.objects().where(TimeEntry.ticket == ticket_id)
    covered = sum(1 for e in entries if e.coverage == "account")
    hourly = sum(1 for e in entries if e.coverage == "hourly")
    lots = await Lot.objects().where(Lot.company == company_id)
    sums = await ledger.entries_sum_by_lot(company_id)
    consistent = all(sums[lot.id] == lot.remaining_minutes >= 0 for lot in lots)
    print(f"engine:          {os.environ['DATABASE_URL'].split(':')[0]}")
    print(f"time entries:    {len(entries)} ({PROCESSES} processes x {ENTRIES // PROCESSES})")
    print(f"account-covered: {covered}")
    print(f"billed hourly:   {hourly}")
    print(f"balance after:   {await ledger.balance(company_id, clock.today())} min")
    print(f"ledger = lots:   {consistent}")
    print(f"wall time:       {seconds:.2f} s ({len(entries) / seconds:.0f} entries/s)")


def main() -> None:
    _setup_database()
    ticket_id, user_id = asyncio.run(_prepare())
    keys = [f"bench-{ticket_id}-{n}" for n in range(ENTRIES)]
    start_at = time.time() + 2
    workers = [
        multiprocessing.get_context("spawn").Process(
            target=_worker, args=(ticket_id, user_id, keys[n::PROCESSES], start_at)
        )
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.time() - start_at

    async def company_of_ticket() -> int:
        from backend.tables import Ticket

        return (await Ticket.objects().get(Ticket.id == ticket_id)).company

    asyncio.run(_report(ticket_id, asyncio.run(company_of_ticket()), seconds))


if __name__ == "__main__":
    main()
