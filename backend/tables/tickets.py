from enum import StrEnum

from piccolo.columns import Boolean, Date, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.orders import Order
from backend.tables.users import User


class TicketStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    waiting_for_customer = "waiting_for_customer"
    resolved = "resolved"
    closed = "closed"


class Channel(StrEnum):
    web = "web"
    phone = "phone"
    mail = "mail"
    remote = "remote"


class Coverage(StrEnum):
    plan = "plan"  # covered by Fri support: nothing debited
    account = "account"  # all from the time account
    split = "split"  # what the account had, the rest hourly
    hourly = "hourly"  # billed at the hourly rate


class Ticket(Table, tablename="ticket"):
    """A support request (SPEC §6); shown as SUP-000123 from its id."""

    company = ForeignKey(references=Company, index=True)
    product_code = Varchar(length=40)
    subject = Varchar(length=200)
    description = Text()
    channel = Varchar(length=10, choices=Channel)
    status = Varchar(length=30, choices=TicketStatus, default=TicketStatus.open.value)
    opened_by = ForeignKey(references=User)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    # Since when the customer has waited on support (opened, or their last reply); NULL while
    # no one waits on support (staff answered, waiting for the customer, done). The queue
    # shows the longest waiting first.
    waiting_since = Timestamptz(null=True, default=TimestamptzNow(), index=True)
    # The latest activity its customer can see (backend/services/activity.py): the ticket
    # history's order, newest first, indexed with the company and the id (a migration).
    last_activity_at = Timestamptz(default=TimestamptzNow())


class TicketMessage(Table, tablename="ticket_message"):
    ticket = ForeignKey(references=Ticket, index=True)
    author = ForeignKey(references=User)
    body = Text()
    internal = Boolean(default=False)  # staff notes: never shown to customers
    created_at = Timestamptz(default=TimestamptzNow())


class TimeEntry(Table, tablename="time_entry"):
    """Support time a technician logged, and how it was covered, decided when logged (SPEC §2)."""

    ticket = ForeignKey(references=Ticket, index=True)
    company = ForeignKey(references=Company, index=True)
    technician = ForeignKey(references=User)
    performed_on = Date()
    channel = Varchar(length=10, choices=Channel)
    note = Varchar(length=500, default="")
    actual_minutes = Integer()
    billed_minutes = Integer()  # rounded up to 15, at least 15
    coverage = Varchar(length=10, choices=Coverage)
    account_minutes = Integer(default=0)  # taken from the time account
    hourly_minutes = Integer(default=0)  # billed at the hourly rate
    hourly_amount_ore = Integer(default=0)  # ex. MVA
    idempotency_key = Varchar(length=100, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    voided_at = Timestamptz(null=True, default=None)
    voided_by = ForeignKey(references=User, null=True)
    void_reason = Varchar(length=500, default="")


class ChargeStatus(StrEnum):
    outstanding = "outstanding"
    paid = "paid"
    cancelled = "cancelled"  # its time entry was voided before payment
    refunded = "refunded"  # paid, then the money went back (a void after payment, a refund)


class HourlyCharge(Table, tablename="hourly_charge"):
    """Support time billed at the hourly rate (alternative 3), until paid online."""

    company = ForeignKey(references=Company, index=True)
    time_entry = ForeignKey(references=TimeEntry, unique=True)
    minutes = Integer()
    amount_ore = Integer()  # ex. MVA
    status = Varchar(length=20, choices=ChargeStatus, default=ChargeStatus.outstanding.value)
    order = ForeignKey(references=Order, null=True, index=True)
    created_at = Timestamptz(default=TimestamptzNow())


class SupportDay(Table, tablename="support_day"):
    """A company's support on one day (Europe/Oslo), by how it was paid: the time entries not
    voided, added up as they are logged and voided (backend/services/support_days.py), so the
    statement's chart reads a year of days, not a year of time entries. One row per company
    and day (a unique index)."""

    company = ForeignKey(references=Company)
    day = Date()
    plan_minutes = Integer(default=0)  # billed minutes covered by the plan
    account_minutes = Integer(default=0)  # taken from the time account
    hourly_minutes = Integer(default=0)  # billed at the hourly rate
