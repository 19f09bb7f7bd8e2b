from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T01:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "one update advisory in force per product and title"

# Two technicians publishing the same title for a product at once make one advisory: the
# second insert fails and services/advisories.py reads the first.
INDEX = "advisory_one_in_force"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create_index():
        await engine_finder().run_ddl(
            f"CREATE UNIQUE INDEX {INDEX} ON advisory (product_code, title)"
            " WHERE withdrawn_at IS NULL"
        )

    async def drop_index():
        await engine_finder().run_ddl(f"DROP INDEX {INDEX}")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
