from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-12-01T21:59:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "the audit trail is append-only: the database refuses UPDATE and DELETE"

# A migration of its own: Piccolo runs a migration's add_raw before its add_table.
MESSAGE = "audit_entry is append-only"

POSTGRES = [
    "CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
    f" BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$",
    "CREATE TRIGGER audit_entry_no_change BEFORE UPDATE OR DELETE ON audit_entry"
    " FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
    # TRUNCATE skips row triggers.
    "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()",
]
POSTGRES_BACK = [
    "DROP TRIGGER audit_entry_no_truncate ON audit_entry",
    "DROP TRIGGER audit_entry_no_change ON audit_entry",
    "DROP FUNCTION audit_entry_append_only()",
]
SQLITE = [
    f"CREATE TRIGGER audit_entry_no_{event.lower()} BEFORE {event} ON audit_entry"
    f" BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    for event in ("UPDATE", "DELETE")
]
SQLITE_BACK = ["DROP TRIGGER audit_entry_no_update", "DROP TRIGGER audit_entry_no_delete"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    postgres = isinstance(engine_finder(), PostgresEngine)

    async def create_triggers():
        for statement in POSTGRES if postgres else SQLITE:
            await engine_finder().run_ddl(statement)

    async def drop_triggers():
        for statement in POSTGRES_BACK if postgres else SQLITE_BACK:
            await engine_finder().run_ddl(statement)

    manager.add_raw(create_triggers)
    manager.add_raw_backwards(drop_triggers)
    return manager
