from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import ForeignKey, Varchar
from piccolo.engine import engine_finder
from piccolo.table import Table


# The columns as they were, for the copy (never the app's tables: they change).
class OldAgreement(Table, tablename="plan_agreement"):
    product_codes = Varchar(length=400)


class OldLot(Table, tablename="time_lot"):
    product_codes = Varchar(length=400)


async def copy_rows() -> None:
    """Each comma-separated code becomes a row; then one row per product and owner, enforced."""
    for old, table, owner in (
        (OldAgreement, "agreement_product", "agreement"),
        (OldLot, "lot_product", "lot"),
    ):
        for row in await old.select(old.id, old.product_codes):
            for code in dict.fromkeys(c.strip() for c in row["product_codes"].split(",")):
                if code:
                    await old.raw(
                        f"INSERT INTO {table} ({owner}, product_code) VALUES ({{}}, {{}})",
                        row["id"],
                        code,
                    )
        await engine_finder().run_ddl(
            f"CREATE UNIQUE INDEX {table}_unique ON {table} ({owner}, product_code)"
        )

ID = "2026-12-01T10:16:38:864125"
VERSION = "1.38.0"
DESCRIPTION = "covered products as rows: copy, then drop the comma-separated columns"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="backend", description=DESCRIPTION
    )

    manager.drop_column(
        table_class_name="Agreement",
        tablename="plan_agreement",
        column_name="product_codes",
        db_column_name="product_codes",
        schema=None,
    )

    manager.drop_column(
        table_class_name="Lot",
        tablename="time_lot",
        column_name="product_codes",
        db_column_name="product_codes",
        schema=None,
    )

    manager.add_raw(copy_rows)

    return manager
