from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import (
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

from backend.tables.advisories import Verdict


class User(Table, tablename="portal_user", schema=None):
    id = Serial(null=False, primary_key=True, db_column_name="id")


class Advisory(Table, tablename="advisory", schema=None):
    id = Serial(null=False, primary_key=True, db_column_name="id")


ID = "2026-12-02T01:25:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "update advisories and their kept revisions (issue 13)"


def _params(**params):
    return {
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
        **params,
    }


def _foreign_key(references, on_delete=OnDelete.restrict, **params):
    return _params(
        references=references,
        on_delete=on_delete,
        on_update=OnUpdate.cascade,
        target_column=None,
        **params,
    )


TABLES = {
    ("Advisory", "advisory"): [
        ("product_code", Varchar, _params(length=40, default="", index=True)),
        ("title", Varchar, _params(length=200, default="")),
        ("verdict", Varchar, _params(length=20, default="", choices=Verdict)),
        ("revision", Integer, _params(default=1)),
        ("created_at", Timestamptz, _params(default=TimestamptzNow(), index=True)),
        ("updated_at", Timestamptz, _params(default=TimestamptzNow())),
        ("withdrawn_at", Timestamptz, _params(default=None, null=True)),
        ("withdrawn_reason", Varchar, _params(length=500, default="")),
        ("created_by", ForeignKey, _foreign_key(User, null=True)),
    ],
    ("AdvisoryRevision", "advisory_revision"): [
        ("advisory", ForeignKey, _foreign_key(Advisory, OnDelete.cascade, index=True)),
        ("number", Integer, _params(default=1)),
        ("verdict", Varchar, _params(length=20, default="", choices=Verdict)),
        ("summary", Varchar, _params(length=500, default="")),
        ("details", Text, _params(default="")),
        ("applies_to", Varchar, _params(length=200, default="")),
        ("author", ForeignKey, _foreign_key(User, null=True)),
        ("created_at", Timestamptz, _params(default=TimestamptzNow())),
    ],
}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    for (class_name, tablename), columns in TABLES.items():
        manager.add_table(class_name=class_name, tablename=tablename, schema=None, columns=None)
        for name, column_class, params in columns:
            manager.add_column(
                table_class_name=class_name,
                tablename=tablename,
                column_name=name,
                db_column_name=name,
                column_class_name=column_class.__name__,
                column_class=column_class,
                params=params,
                schema=None,
            )
    return manager
