from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder

ID = "2026-12-01T17:30:01:794231"
VERSION = "1.38.0"
DESCRIPTION = "ticket last_activity_at: the ticket history's order"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="backend", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Ticket",
        tablename="ticket",
        column_name="last_activity_at",
        db_column_name="last_activity_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    engine = engine_finder()
    if engine.engine_type == "sqlite":
        # SQLite refuses to add a column whose default is not a constant (CURRENT_TIMESTAMP)
        # to a table that has rows. Added with a constant one instead; every insert sends the
        # time itself (Piccolo's Python default) and the next migration fills in the rows
        # there are. The column stays recorded (Piccolo's picture of the schema) as it is.
        async def add_column() -> None:
            await engine.run_ddl(
                'ALTER TABLE ticket ADD COLUMN "last_activity_at" TIMESTAMPTZ NOT NULL'
                " DEFAULT '1970-01-01 00:00:00+00:00'"
            )

        async def skip(backwards: bool = False) -> None:
            if backwards:
                await engine.run_ddl('ALTER TABLE ticket DROP COLUMN "last_activity_at"')

        manager.add_raw(add_column)
        manager._run_add_columns = skip  # type: ignore[method-assign]

    return manager
