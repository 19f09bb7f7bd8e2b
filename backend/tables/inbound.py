from enum import StrEnum

from piccolo.columns import Bytea, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.tickets import Ticket
from backend.tables.users import User


class InboundOutcome(StrEnum):
    ticket = "ticket"  # opened a ticket for the sender's company
    reply = "reply"  # added to its ticket as the customer's reply
    inbox = "inbox"  # waits in the staff inbox (see `reason`)
    attached = "attached"  # staff attached it to a company: a ticket
    discarded = "discarded"  # staff discarded it
    duplicate = "duplicate"  # the same message (sender and Message-ID) came again


class InboxReason(StrEnum):
    unknown_sender = "unknown_sender"  # no active company user has this address
    automatic = "automatic"  # an auto-reply, a bounce, a list's mail: never answered
    too_many = "too_many"  # the sender's new tickets in the last hour reached the limit
    unreadable = "unreadable"  # no sender address could be read from it
    unverified = "unverified"  # a customer's address, but the mail server did not vouch for it
    not_allowed = "not_allowed"  # a member answering a ticket that is not theirs to answer


class InboundMail(Table, tablename="inbound_mail"):
    """A mail to the support address (services/inbound_mail.py), kept whole (`raw`) with what
    became of it, so nothing sent to support is lost and staff can always read the original."""

    received_at = Timestamptz(default=TimestamptzNow())
    envelope_from = Varchar(length=254, default="")  # MAIL FROM; "" for <> (a bounce)
    envelope_to = Varchar(length=1000, default="")  # RCPT TO, comma-separated
    # The From header's address, lower-cased: a sender's mails are counted by it (the hour's limit).
    from_address = Varchar(length=254, default="", index=True)
    from_name = Varchar(length=200, default="")
    subject = Varchar(length=300, default="")
    message_id = Varchar(length=255, default="")
    body = Text(default="")  # its text as the portal shows it (HTML-only mail as plain text)
    raw = Bytea()
    size = Integer(default=0)
    attachment_count = Integer(default=0)
    outcome = Varchar(length=20, choices=InboundOutcome, index=True)
    reason = Varchar(length=20, default="")  # InboxReason while (or after) in the inbox
    sender = ForeignKey(references=User, null=True)
    company = ForeignKey(references=Company, null=True)
    ticket = ForeignKey(references=Ticket, null=True)
    handled_by = ForeignKey(references=User, null=True)  # staff who attached or discarded it
    handled_at = Timestamptz(null=True, default=None)


class TicketMailId(Table, tablename="ticket_mail_id"):
    """A Message-ID of a mail about a ticket, ours or the customer's: a reply naming it in
    In-Reply-To or References belongs to that ticket, and our replies thread under them."""

    ticket = ForeignKey(references=Ticket, index=True)
    message_id = Varchar(length=255, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
