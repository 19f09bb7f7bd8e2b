from enum import StrEnum

from piccolo.columns import Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company


class Role(StrEnum):
    superuser = "superuser"
    member = "member"
    technician = "technician"
    admin = "admin"


class User(Table, tablename="portal_user"):
    # Lower-cased, so uniqueness ignores case.
    email = Varchar(length=254, unique=True)
    name = Varchar(length=200)
    phone = Varchar(length=20, default="")  # E.164
    password_hash = Varchar(length=255)
    role = Varchar(length=20, choices=Role)
    # Company users belong to exactly one company; staff to none.
    company = ForeignKey(references=Company, null=True, index=True)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)
    # The language the user chose for their pages and mails (i18n.LANGUAGES).
    language = Varchar(length=8, default="nb")
