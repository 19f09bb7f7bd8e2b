from enum import StrEnum

from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.users import User


class Verdict(StrEnum):
    """What the reseller says about installing a version or patch (issue 13)."""

    safe = "safe"
    wait = "wait"
    known_problems = "known_problems"
    do_not_install = "do_not_install"


class Advisory(Table, tablename="advisory"):
    """One new version or patch of a product ("Inventor 2027.1 Update") and what the reseller
    says about it. `verdict` and `revision` repeat the latest AdvisoryRevision, so lists read
    one row per advisory; services/advisories.py writes both in one transaction."""

    product_code = Varchar(length=40, index=True)
    title = Varchar(length=200)
    verdict = Varchar(length=20, choices=Verdict)
    revision = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())
    withdrawn_at = Timestamptz(null=True, default=None)
    withdrawn_reason = Varchar(length=500, default="")
    created_by = ForeignKey(references=User, null=True, on_delete=OnDelete.restrict)


class AdvisoryRevision(Table, tablename="advisory_revision"):
    """One dated revision of an advisory, kept for its history: only added, never changed.
    (advisory, number) is unique (a raw index in the migration)."""

    advisory = ForeignKey(references=Advisory, index=True, on_delete=OnDelete.cascade)
    number = Integer(default=1)
    verdict = Varchar(length=20, choices=Verdict)
    summary = Varchar(length=500)
    details = Text(default="")
    applies_to = Varchar(length=200, default="")
    author = ForeignKey(references=User, null=True, on_delete=OnDelete.restrict)
    created_at = Timestamptz(default=TimestamptzNow())


class AdvisoryUnfollow(Table, tablename="advisory_unfollow"):
    """A covered product whose advisories the company's superuser chose not to be mailed
    about. A company follows every covered product (the default) but those named here."""

    company = ForeignKey(references=Company, index=True, on_delete=OnDelete.cascade)
    product_code = Varchar(length=40)


class AdvisoryFeed(Table, tablename="advisory_feed"):
    """A company's private Atom feed of its advisories: only the SHA-256 of the token in the
    feed's URL is kept (as for API tokens). One per company; a new one replaces it."""

    company = ForeignKey(references=Company, unique=True, on_delete=OnDelete.cascade)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(references=User, null=True, on_delete=OnDelete.restrict)
