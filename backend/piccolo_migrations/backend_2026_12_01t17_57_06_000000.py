from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T17:57:06:000000"
VERSION = "1.38.0"
DESCRIPTION = "one support day per company and day, backfilled; indexes for pages of one company"

# As the chart counted them before they were stored: the time entries not voided, by day.
BACKFILL = (
    "INSERT INTO support_day (company, day, plan_minutes, account_minutes, hourly_minutes)"
    " SELECT te.company, te.performed_on,"
    " sum(CASE WHEN te.coverage = 'plan' THEN te.billed_minutes ELSE 0 END),"
    " sum(te.account_minutes), sum(te.hourly_minutes)"
    " FROM time_entry AS te WHERE te.voided_at IS NULL GROUP BY te.company, te.performed_on"
)
INDEXES = {
    "support_day_company_day": "UNIQUE INDEX support_day_company_day ON support_day (company, day)",
    # A company's latest entries (the time account page), newest first from its own rows. By
    # id, PostgreSQL's generic plan for a prepared statement walks the primary key backwards
    # and through a large company's newer entries to reach a small company's older ones.
    "ledger_entry_company_time": (
        "INDEX ledger_entry_company_time ON ledger_entry (company, created_at, id)"
    ),
    # The dashboard's open tickets, newest first (the same trap by id: an index of the open
    # ones alone is the cheaper walk for the planner too).
    "ticket_company_open": (
        "INDEX ticket_company_open ON ticket (company, id)"
        " WHERE status NOT IN ('resolved', 'closed')"
    ),
    # The dashboard sums what is owed: the few outstanding charges, not years of paid ones.
    "hourly_charge_outstanding": (
        "INDEX hourly_charge_outstanding ON hourly_charge (company) WHERE status = 'outstanding'"
    ),
}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def index_and_backfill():
        # A migration of its own: Piccolo runs a migration's add_raw before its add_table.
        engine = engine_finder()
        for definition in INDEXES.values():
            await engine.run_ddl(f"CREATE {definition}")
        await engine.run_ddl(BACKFILL)

    async def drop_indexes():
        engine = engine_finder()
        for name in INDEXES:
            await engine.run_ddl(f"DROP INDEX {name}")

    manager.add_raw(index_and_backfill)
    manager.add_raw_backwards(drop_indexes)
    return manager
