from enum import StrEnum

from piccolo.columns import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.orders import Order
from backend.tables.users import User


class RefundStatus(StrEnum):
    pending = "pending"  # recorded; the call to the gateway is under way
    sent = "sent"  # the gateway took it; its effect comes with the `charge.refunded` webhook
    failed = "failed"  # the gateway refused it or could not be reached: nothing was refunded


class RefundRequest(Table, tablename="refund_request"):
    """An admin's refund of a paid order, made once per confirmation (services/refunds.py).
    The minutes, plan or charges it affects change only when its webhook arrives."""

    order = ForeignKey(references=Order, index=True)
    amount_ore = Integer()  # incl. MVA, as Stripe refunds it
    # The order's refunded total once this refund lands (what was committed before + amount):
    # until the order's refunded_ore reaches it, the refund waits for its webhook.
    expected_total_ore = Integer()
    reason = Varchar(length=500)
    requested_by = ForeignKey(references=User)
    # From the confirmation page; Stripe's idempotency key is made from it too.
    idempotency_key = Varchar(length=64, unique=True)
    status = Varchar(length=20, choices=RefundStatus, default=RefundStatus.pending.value)
    stripe_refund_id = Varchar(length=255, null=True, default=None)
    error = Varchar(length=500, default="")
    created_at = Timestamptz(default=TimestamptzNow())
