from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T10:19:16:000000"
VERSION = "1.38.0"
DESCRIPTION = "stop the queue clock of tickets that wait on no one"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def stop_clocks():
        # A migration of its own: Piccolo runs a migration's add_raw before its alter_column,
        # so the column must be nullable (the previous migration) before NULLs go in.
        await engine_finder().run_ddl(
            "UPDATE ticket SET waiting_since = NULL "
            "WHERE status IN ('waiting_for_customer', 'resolved', 'closed')"
        )

    async def restart_clocks():
        # Back to NOT NULL: every ticket gets a time again.
        await engine_finder().run_ddl(
            "UPDATE ticket SET waiting_since = created_at WHERE waiting_since IS NULL"
        )

    manager.add_raw(stop_clocks)
    manager.add_raw_backwards(restart_clocks)
    return manager
