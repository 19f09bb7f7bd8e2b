from enum import StrEnum

from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.users import User


class AuditKind(StrEnum):
    """What a back-office entry records (services/audit.py). New kinds are added here; the
    column is text, so adding one needs no migration."""

    staff_sign_in = "staff_sign_in"
    staff_created = "staff_created"
    staff_deactivated = "staff_deactivated"
    staff_reactivated = "staff_reactivated"
    staff_sign_in_reset = "staff_sign_in_reset"
    minutes_adjusted = "minutes_adjusted"
    price_changed = "price_changed"
    company_edited = "company_edited"
    company_deactivated = "company_deactivated"
    company_reactivated = "company_reactivated"
    superuser_moved = "superuser_moved"
    refund = "refund"
    expiry_extended = "expiry_extended"
    import_ = "import"
    # A superuser added products to the time account (free, SPEC §2).
    products_added = "products_added"
    product_changed = "product_changed"
    settings_changed = "settings_changed"
    # Update advisories (services/advisories.py, issue 13).
    advisory_published = "advisory_published"
    advisory_revised = "advisory_revised"
    advisory_withdrawn = "advisory_withdrawn"


class AuditEntry(Table, tablename="audit_entry"):
    """One back-office action or staff sign-in. Append-only: the database refuses UPDATE and
    DELETE on this table (triggers, migration 2026-12-01T21:59:01), and no code tries."""

    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    # Users and companies are never deleted; a row that names one keeps it (restrict).
    actor = ForeignKey(references=User, null=True, index=True, on_delete=OnDelete.restrict)
    kind = Varchar(length=40, choices=AuditKind, index=True)
    company = ForeignKey(references=Company, null=True, index=True, on_delete=OnDelete.restrict)
    subject = Varchar(length=200, default="")  # what object, e.g. "user:12"
    before = Text(default="")  # JSON, "" for nothing
    after = Text(default="")  # JSON, "" for nothing
    reason = Text(default="")
