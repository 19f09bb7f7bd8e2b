import datetime

from piccolo.columns import Boolean, Date, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.users import User

# The first price list was in force from before the portal existed.
FIRST_VALID_FROM = datetime.date(2000, 1, 1)


class Product(Table, tablename="catalog_product"):
    """A software product an agreement can cover (Inventor, Vault, a CAM product, ...)."""

    code = Varchar(length=40, unique=True)
    name = Varchar(length=120)
    active = Boolean(default=True)
    position = Integer(default=0)


class PriceList(Table, tablename="catalog_price_list"):
    """One version of the prices, ex. MVA, in øre, in force from `valid_from` (an Oslo date)
    until the next version's. Rows are only added (services/catalog.py), never changed: an
    order or a time entry stores the amount it was priced at."""

    plan_price_per_product_ore = Integer()  # per covered product per 6 months
    prepaid_hour_price_ore = Integer()  # time account, per hour
    hourly_rate_ore = Integer()  # without agreement, per hour
    topup_packs = Varchar(length=100, default="5,10,20")  # hours, comma-separated
    valid_from = Date(default=FIRST_VALID_FROM, index=True)
    created_at = Timestamptz(default=TimestamptzNow(), null=True)
    created_by = ForeignKey(references=User, null=True, on_delete=OnDelete.restrict)


class BusinessSettings(Table, tablename="business_settings"):
    """The business's own settings an admin edits (services/business.py): one row, `singleton`
    unique so two first saves cannot make two. A NULL column falls back to the configuration."""

    singleton = Varchar(length=20, unique=True, default="business")
    seller_name = Varchar(length=200, null=True, default=None)
    seller_org_number = Varchar(length=9, null=True, default=None)
    seller_address = Varchar(length=300, null=True, default=None)
    # Recurring closed days as "MM-DD" joined by commas ("12-24,12-31"): read and written
    # whole with the rest of the row, never queried one by one.
    extra_closed_days = Varchar(length=400, null=True, default=None)
    # The low-balance warning threshold a newly registered company starts with (SPEC §7).
    low_balance_minutes = Integer(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow(), null=True)
    updated_by = ForeignKey(references=User, null=True, on_delete=OnDelete.restrict)
