from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.users import User


class Invitation(Table, tablename="invitation"):
    """A colleague the superuser invited to become a member (services/members.py). Only the
    SHA-256 of the link's token is kept: the token itself is only in the mail. A resend gives
    the invitation a new token (and a new expiry), so the old link stops working."""

    company = ForeignKey(references=Company, index=True)
    email = Varchar(length=254)  # lower-cased, as users' are
    token_hash = Varchar(length=64, unique=True)  # SHA-256 of the link's token, as hex
    invited_by = ForeignKey(references=User)
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(default=TimestamptzNow())  # the current link's
    expires_at = Timestamptz()
    accepted_at = Timestamptz(null=True, default=None)
    # The member the invitation made.
    accepted_by = ForeignKey(references=User, null=True, default=None)
    withdrawn_at = Timestamptz(null=True, default=None)
