from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T01:25:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "one revision per number of an advisory"

# Two revisions posted at once cannot both become number n: one fails and is tried again.
INDEX = "advisory_revision_number"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create_index():
        # A migration of its own: Piccolo runs a migration's add_raw before its add_table.
        await engine_finder().run_ddl(
            f"CREATE UNIQUE INDEX {INDEX} ON advisory_revision (advisory, number)"
        )

    async def drop_index():
        await engine_finder().run_ddl(f"DROP INDEX {INDEX}")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
