from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Serial, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table


class Company(Table, tablename="company", schema=None):
    id = Serial(null=False, primary_key=True, db_column_name="id")


ID = "2026-12-02T01:35:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the covered products a company is not mailed update advisories about (issue 13)"


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


COLUMNS = [
    (
        "company",
        ForeignKey,
        _params(
            references=Company,
            on_delete=OnDelete.cascade,
            on_update=OnUpdate.cascade,
            target_column=None,
            index=True,
        ),
    ),
    ("product_code", Varchar, _params(length=40, default="")),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    manager.add_table(
        class_name="AdvisoryUnfollow", tablename="advisory_unfollow", schema=None, columns=None
    )
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="AdvisoryUnfollow",
            tablename="advisory_unfollow",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
