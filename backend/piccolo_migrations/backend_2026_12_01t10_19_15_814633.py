import re

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.engine import engine_finder

ID = "2026-12-01T10:19:15:814633"
VERSION = "1.38.0"
DESCRIPTION = "ticket waiting_since nullable: NULL while no one waits on support"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)

    manager.alter_column(
        table_class_name="Ticket",
        tablename="ticket",
        column_name="waiting_since",
        db_column_name="waiting_since",
        params={"null": True},
        old_params={"null": False},
        column_class=Timestamptz,
        old_column_class=Timestamptz,
        schema=None,
    )

    engine = engine_finder()
    if engine.engine_type == "sqlite":
        # SQLite has no ALTER COLUMN (Piccolo's would fail). Dropping a NOT NULL constraint
        # by editing the stored schema is one of the edits SQLite documents as safe
        # (sqlite.org/lang_altertable.html, "writable_schema"): no row needs rewriting.
        async def drop_not_null() -> None:
            await _edit_sqlite_schema(engine, r'("waiting_since" TIMESTAMPTZ) NOT NULL', r"\1")

        async def add_not_null() -> None:
            await _edit_sqlite_schema(
                engine, r'("waiting_since" TIMESTAMPTZ)(?! NOT NULL)', r"\1 NOT NULL"
            )

        async def skip() -> None:
            pass

        manager.add_raw(drop_not_null)
        manager.add_raw_backwards(add_not_null)
        # The alteration stays recorded (Piccolo's picture of the schema) but is not run.
        manager._run_alter_columns = lambda backwards=False: skip()  # type: ignore[method-assign]

    return manager


async def _edit_sqlite_schema(engine, pattern: str, replacement: str) -> None:
    rows = await engine.run_ddl(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ticket'"
    )
    new_sql = re.sub(pattern, replacement, rows[0]["sql"])
    version = (await engine.run_ddl("PRAGMA schema_version"))[0]["schema_version"]
    await engine.run_ddl("PRAGMA writable_schema = ON")
    await engine.run_ddl(
        "UPDATE sqlite_master SET sql = {} WHERE type = 'table' AND name = 'ticket'".format(
            "'" + new_sql.replace("'", "''") + "'"
        )
    )
    await engine.run_ddl(f"PRAGMA schema_version = {int(version) + 1}")
    await engine.run_ddl("PRAGMA writable_schema = OFF")
