from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T18:47:35:000000"
VERSION = "1.38.0"
DESCRIPTION = "the outbox's due mails, found from their own index"

# The sender asks every few seconds what is due: the few pending mails, not years of sent ones.
INDEX = "outbox_mail_due"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    async def create_index():
        # A migration of its own: Piccolo runs a migration's add_raw before its add_table.
        await engine_finder().run_ddl(
            f"CREATE INDEX {INDEX} ON outbox_mail (next_attempt_at) WHERE status = 'pending'"
        )

    async def drop_index():
        await engine_finder().run_ddl(f"DROP INDEX {INDEX}")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
