from enum import StrEnum

from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.users import User


class LinkPurpose(StrEnum):
    password_reset = "password_reset"  # "Glemt passord?": sets a new password
    email_change = "email_change"  # confirms a new e-mail address, sent to that address


class AccountLink(Table, tablename="account_link"):
    """A single-use link mailed to a user (services/account_links.py). Only the SHA-256 of its
    token is kept: whoever reads this table cannot use the links in it."""

    token_hash = Varchar(length=64, unique=True)  # hex
    purpose = Varchar(length=20, choices=LinkPurpose)
    user = ForeignKey(references=User, index=True, on_delete=OnDelete.cascade)
    # The address an e-mail change moves to (lower-cased); "" for a password reset.
    new_email = Varchar(length=254, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    # When it was used, or replaced by a newer link of the same purpose: then it is no link.
    used_at = Timestamptz(null=True, default=None)
