from enum import StrEnum

from piccolo.columns import Date, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.orders import Order
from backend.tables.users import User


class EntryKind(StrEnum):
    credit = "credit"  # a lot bought (or imported)
    debit = "debit"  # support time
    expiry = "expiry"  # unused minutes written off when the lot expired
    refund_write_off = "refund_write_off"  # unused minutes of a refunded lot
    adjustment = "adjustment"  # an admin's correction, with a reason
    reversal = "reversal"  # a voided time entry's minutes given back
    expiry_extension = "expiry_extension"  # an admin moved a lot's expiry later (zero minutes)
    import_ = "import"  # a lot bought before the portal, onboarded with its original dates


class Lot(Table, tablename="time_lot"):
    """Minutes bought together, valid until `expires_on` (SPEC §2, alternative 2).

    `remaining_minutes` is kept equal to the sum of the lot's ledger entries; only
    backend/services/ledger.py writes it.
    """

    company = ForeignKey(references=Company, index=True)
    order = ForeignKey(references=Order, null=True, index=True)
    minutes = Integer()
    remaining_minutes = Integer()
    # Usable on days before this date (Europe/Oslo): one year after payment.
    expires_on = Date(index=True)
    created_at = Timestamptz(default=TimestamptzNow())


class LotProduct(Table, tablename="lot_product"):
    """A product a lot's minutes pay for: one row per product (unique per lot)."""

    lot = ForeignKey(references=Lot, index=True)
    product_code = Varchar(length=40, index=True)


class LedgerOperation(Table, tablename="ledger_operation"):
    """One call that may move minutes, recorded even when it moved none, so that a replay of
    its idempotency key never acts twice (an uncovered debit must stay uncovered)."""

    idempotency_key = Varchar(length=200, unique=True)
    company = ForeignKey(references=Company, index=True)
    kind = Varchar(length=20, choices=EntryKind)
    requested_minutes = Integer()
    moved_minutes = Integer(default=0)
    # The sum of the company's ledger entries up to and including this operation's, in the
    # order (created_at, id): what the statement shows as the balance after it. Written by
    # backend/services/ledger.py with the company locked, so operations of one company come
    # one at a time and each starts from the last one's balance.
    balance_after = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())


class LedgerEntry(Table, tablename="ledger_entry"):
    """Append-only: every movement of minutes, with its cause (SPEC §5)."""

    company = ForeignKey(references=Company, index=True)
    lot = ForeignKey(references=Lot, index=True)
    operation = ForeignKey(references=LedgerOperation, index=True)
    kind = Varchar(length=20, choices=EntryKind)
    minutes = Integer()  # signed: + into the lot, - out of it
    idempotency_key = Varchar(length=200, unique=True)
    cause_type = Varchar(length=20)  # order | time_entry | admin | system | import
    cause_id = Varchar(length=64, default="")
    note = Varchar(length=500, default="")
    created_by = ForeignKey(references=User, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
