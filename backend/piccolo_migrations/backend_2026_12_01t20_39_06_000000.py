from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T20:39:06:000000"
VERSION = "1.38.0"
DESCRIPTION = "one open invitation per address and company"

# Inviting the same address twice (at once) to the same company leaves one invitation, to resend.
# (One superuser per company is portal_user_one_superuser, 2026-12-01T10:13:56.)
INDEX = "invitation_one_open"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create_index():
        # A migration of its own: Piccolo runs a migration's add_raw before its add_table.
        await engine_finder().run_ddl(
            f"CREATE UNIQUE INDEX {INDEX} ON invitation (company, email)"
            " WHERE accepted_at IS NULL AND withdrawn_at IS NULL"
        )

    async def drop_index():
        await engine_finder().run_ddl(f"DROP INDEX {INDEX}")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
