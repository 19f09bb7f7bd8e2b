from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T17:29:55:000000"
VERSION = "1.38.0"
DESCRIPTION = "backfill the balance after each ledger operation; indexes for the statement's pages"

# The running sum of each company's ledger entries in the statement's order (created_at, id):
# what the statement computed on every page until the balance was stored.
BACKFILL = (
    "UPDATE ledger_operation SET balance_after = b.balance FROM ("
    " SELECT o.id, sum(coalesce(m.minutes, 0)) OVER"
    " (PARTITION BY o.company ORDER BY o.created_at, o.id) AS balance"
    " FROM ledger_operation AS o LEFT JOIN ("
    "  SELECT e.operation, sum(e.minutes) AS minutes FROM ledger_entry AS e"
    "  GROUP BY e.operation) AS m ON m.operation = o.id"
    ") AS b WHERE b.id = ledger_operation.id"
)
# A statement page reads its rows newest first from these, LIMIT rows at a time.
INDEXES = {
    "ledger_operation_company_time": "ledger_operation (company, created_at, id)",
    "time_entry_company_time_unpaid": (
        "time_entry (company, created_at, id) WHERE account_minutes = 0"
    ),
}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def backfill_and_index():
        # A migration of its own: Piccolo runs a migration's add_raw before its add_column.
        engine = engine_finder()
        await engine.run_ddl(BACKFILL)
        for name, target in INDEXES.items():
            await engine.run_ddl(f"CREATE INDEX {name} ON {target}")

    async def drop_indexes():
        engine = engine_finder()
        for name in INDEXES:
            await engine.run_ddl(f"DROP INDEX {name}")

    manager.add_raw(backfill_and_index)
    manager.add_raw_backwards(drop_indexes)
    return manager
