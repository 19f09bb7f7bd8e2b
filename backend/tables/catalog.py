from piccolo.columns import Boolean, Integer, Varchar
from piccolo.table import Table


class Product(Table, tablename="catalog_product"):
    """A software product an agreement can cover (Inventor, Vault, a CAM product, ...)."""

    code = Varchar(length=40, unique=True)
    name = Varchar(length=120)
    active = Boolean(default=True)
    position = Integer(default=0)


class PriceList(Table, tablename="catalog_price_list"):
    """The current prices, ex. MVA, in øre. One row; an admin edits it."""

    plan_price_per_product_ore = Integer()  # per covered product per 6 months
    prepaid_hour_price_ore = Integer()  # time account, per hour
    hourly_rate_ore = Integer()  # without agreement, per hour
    topup_packs = Varchar(length=100, default="5,10,20")  # hours, comma-separated
