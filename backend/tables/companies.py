from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Company(Table, tablename="company"):
    name = Varchar(length=200)
    # Stored compact (nine digits); shown as "974 760 673".
    org_number = Varchar(length=9, unique=True)
    address = Varchar(length=200)
    postal_code = Varchar(length=4)
    city = Varchar(length=100)
    created_at = Timestamptz(default=TimestamptzNow())
    # One Stripe Customer per company, created at its first checkout.
    stripe_customer_id = Varchar(length=255, null=True, default=None, unique=True)
