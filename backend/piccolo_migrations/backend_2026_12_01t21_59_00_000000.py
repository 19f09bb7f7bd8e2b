from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table


class User(Table, tablename="portal_user", schema=None):
    id = Serial(null=False, primary_key=True, db_column_name="id")


class Company(Table, tablename="company", schema=None):
    id = Serial(null=False, primary_key=True, db_column_name="id")


ID = "2026-12-01T21:59:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the audit trail of back-office actions and staff sign-ins"


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


def _foreign_key(references):
    return _params(
        references=references,
        on_delete=OnDelete.restrict,
        on_update=OnUpdate.cascade,
        target_column=None,
        null=True,
        index=True,
    )


COLUMNS = [
    ("created_at", Timestamptz, _params(default=TimestamptzNow(), index=True)),
    ("actor", ForeignKey, _foreign_key(User)),
    ("kind", Varchar, _params(length=40, default="", index=True)),
    ("company", ForeignKey, _foreign_key(Company)),
    ("subject", Varchar, _params(length=200, default="")),
    ("before", Text, _params(default="")),
    ("after", Text, _params(default="")),
    ("reason", Text, _params(default="")),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    manager.add_table(class_name="AuditEntry", tablename="audit_entry", schema=None, columns=None)
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="AuditEntry",
            tablename="audit_entry",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
