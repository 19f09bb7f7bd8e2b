from piccolo.columns import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.tickets import Ticket, TicketMessage


class Attachment(Table, tablename="attachment"):
    """A file on a ticket (backend/services/attachments.py): the bytes live under
    ATTACHMENT_DIR as `stored_name`, never in the database. `message` is NULL for a file sent
    with the ticket itself (its description)."""

    ticket = ForeignKey(references=Ticket, index=True)
    message = ForeignKey(references=TicketMessage, null=True, index=True)
    filename = Varchar(length=255)  # the sender's name for it, sanitised, for display only
    size = Integer()  # bytes
    content_type = Varchar(length=100)  # detected from the bytes, never the sender's claim
    sha256 = Varchar(length=64)
    stored_name = Varchar(length=64, unique=True)  # random (secrets), the file's name on disk
    created_at = Timestamptz(default=TimestamptzNow())
