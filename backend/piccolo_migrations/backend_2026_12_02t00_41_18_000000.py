from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table


class User(Table, tablename="portal_user", schema=None):
    id = Serial(null=False, primary_key=True, db_column_name="id")


class Order(Table, tablename="payment_order", schema=None):
    id = Serial(null=False, primary_key=True, db_column_name="id")


ID = "2026-12-02T00:41:18:000000"
VERSION = "1.38.0"
DESCRIPTION = "an admin's refund of a paid order, once per confirmation (issue 12): refund_request"


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


def _foreign_key(references, **params):
    return _params(
        references=references,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.cascade,
        target_column=None,
        **params,
    )


COLUMNS = [
    ("order", ForeignKey, _foreign_key(Order, index=True)),
    ("amount_ore", Integer, _params(default=0)),
    ("expected_total_ore", Integer, _params(default=0)),
    ("reason", Varchar, _params(length=500, default="")),
    ("requested_by", ForeignKey, _foreign_key(User)),
    ("idempotency_key", Varchar, _params(length=64, default="", unique=True)),
    ("status", Varchar, _params(length=20, default="pending")),
    ("stripe_refund_id", Varchar, _params(length=255, default=None, null=True)),
    ("error", Varchar, _params(length=500, default="")),
    ("created_at", Timestamptz, _params(default=TimestamptzNow())),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    manager.add_table(
        class_name="RefundRequest", tablename="refund_request", schema=None, columns=None
    )
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="RefundRequest",
            tablename="refund_request",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
