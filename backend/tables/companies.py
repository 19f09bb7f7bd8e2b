from piccolo.columns import Boolean, Integer, Timestamptz, Varchar
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
    # Below this many minutes the time account is running low (SPEC §7); 0: never warned.
    low_balance_minutes = Integer(default=60)
    # The company's last ledger operation when the low-balance mail was last written: the
    # next one waits for an operation after it that left the balance at or above the
    # threshold (services/warnings.py). NULL: never mailed.
    low_balance_mailed_at_operation = Integer(null=True, default=None)
    # An admin deactivates a company (issue 12): its users cannot sign in, their sessions and
    # API tokens stop working; nothing is deleted, and reactivating restores them.
    active = Boolean(default=True)
