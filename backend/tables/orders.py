from enum import StrEnum

from piccolo.columns import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.users import User


class OrderKind(StrEnum):
    plan = "plan"
    topup = "topup"
    charges = "charges"
    # Products added to the plan period in force, priced pro rata (SPEC §2): `Order.agreement`.
    plan_addition = "plan_addition"


class OrderStatus(StrEnum):
    pending = "pending"  # waiting for payment
    processing = "processing"  # delayed payment method: paid later or not
    paid = "paid"  # fulfilled
    failed = "failed"
    expired = "expired"
    refunded = "refunded"
    cancelled = "cancelled"  # by the customer ("Avbryt bestillingen"), or replaced


class Order(Table, tablename="payment_order"):
    """One purchase through Stripe Checkout; the server computed every amount (SPEC §4)."""

    company = ForeignKey(references=Company, index=True)
    created_by = ForeignKey(references=User)
    kind = Varchar(length=20, choices=OrderKind)
    status = Varchar(length=20, choices=OrderStatus, default=OrderStatus.pending.value)
    hours = Integer(default=0)  # top-up
    product_codes = Varchar(length=400, default="")
    amount_ore = Integer()  # ex. MVA
    mva_ore = Integer()
    total_ore = Integer()
    refunded_ore = Integer(default=0)  # incl. MVA, as Stripe refunds it
    stripe_session_id = Varchar(length=255, null=True, default=None, unique=True)
    stripe_payment_intent_id = Varchar(length=255, null=True, default=None, index=True)
    # The charge that paid it, so a refund event without a payment intent still finds it.
    stripe_charge_id = Varchar(length=255, null=True, default=None, index=True)
    failure_reason = Varchar(length=500, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    paid_at = Timestamptz(null=True, default=None)
    # Why an admin should look at it (a payment that did not match, a double payment); "" = fine.
    review_reason = Varchar(length=500, default="")
    # A plan_addition's plan period (a plan order's own period names the order instead).
    # Lazy: plan_agreement already refers to this table.
    agreement = ForeignKey(
        references=LazyTableReference("Agreement", module_path="backend.tables.agreements"),
        null=True,
        default=None,
        index=True,
        on_delete=OnDelete.restrict,
    )


class CheckoutSession(Table, tablename="checkout_session"):
    """Every Checkout Session the portal created for an order: only these can pay it. The
    order's `stripe_session_id` is the current one."""

    order = ForeignKey(references=Order, index=True)
    session_id = Varchar(length=255, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class StripeEvent(Table, tablename="stripe_event"):
    """Every webhook event handled, recorded in the same transaction as its effect."""

    event_id = Varchar(length=255, unique=True)
    type = Varchar(length=100)
    received_at = Timestamptz(default=TimestamptzNow())
