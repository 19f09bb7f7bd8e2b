from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.users import User


class ApiToken(Table, tablename="api_token"):
    """A key the company's own systems use for the API (services/api_tokens.py). Only its
    SHA-256 is kept: the secret itself is shown once, when it is made."""

    company = ForeignKey(references=Company, index=True)
    name = Varchar(length=100)
    prefix = Varchar(length=16)  # the secret's first characters, to tell keys apart
    secret_hash = Varchar(length=64, unique=True)  # SHA-256 of the secret, as hex
    created_by = ForeignKey(references=User)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
