from enum import StrEnum

from piccolo.columns import Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class MailStatus(StrEnum):
    pending = "pending"  # to be sent at next_attempt_at
    sent = "sent"
    failed = "failed"  # given up (see last_error): refused for good, or too many attempts


class OutboxMail(Table, tablename="outbox_mail"):
    """A mail to send (services/outbox.py), written in the same transaction as its cause and
    rendered then, so what it says is what was true at that moment."""

    # The cause, e.g. "receipt:123": the same cause never writes a second mail.
    key = Varchar(length=200, unique=True)
    template = Varchar(length=100)  # which mail: frontend/templates/mail/<template>.txt/.html
    language = Varchar(length=5)
    recipient = Varchar(length=254)
    subject = Varchar(length=300)
    text_body = Text()
    html_body = Text()
    message_id = Varchar(length=255)
    # Extra headers as JSON (In-Reply-To, References, Auto-Submitted …): "{}" for none.
    headers = Text(default="{}")
    status = Varchar(length=20, choices=MailStatus, default=MailStatus.pending.value)
    # Attempts started; a claim also moves next_attempt_at past the send (a lease), so a sender
    # that dies mid-send leaves the mail due again later, not lost.
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    last_error = Varchar(length=500, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
