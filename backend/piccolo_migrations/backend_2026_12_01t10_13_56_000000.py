from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T10:13:56:000000"
VERSION = "1.38.0"
DESCRIPTION = "one superuser per company"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create_index():
        # SPEC §1: exactly one superuser per company. A partial unique index works on both
        # SQLite and PostgreSQL (ALTER TABLE ... ADD CONSTRAINT does not on SQLite).
        await engine_finder().run_ddl(
            "CREATE UNIQUE INDEX portal_user_one_superuser ON portal_user (company) "
            "WHERE role = 'superuser'"
        )

    async def drop_index():
        await engine_finder().run_ddl("DROP INDEX portal_user_one_superuser")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
