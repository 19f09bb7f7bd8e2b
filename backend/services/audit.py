"""The audit trail (issue 12): every back-office action and every staff sign-in, with who,
when, what (before and after) and why.

Append-only: `record` is the one way in, inside the caller's transaction (the entry exists
exactly when the action does); this module has no update or delete, and the database refuses
both (triggers on audit_entry, migration 2026-12-01T21:59:01). Entries are read newest first.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import msgspec

from backend.i18n import N_
from backend.services import validation
from backend.tables import AuditEntry, AuditKind, Company, User

PAGE_SIZE = 50

KIND_LABELS: dict[str, str] = {
    AuditKind.staff_sign_in: N_("Innlogging (ansatt)"),
    AuditKind.staff_created: N_("Ansatt opprettet"),
    AuditKind.staff_deactivated: N_("Ansatt deaktivert"),
    AuditKind.staff_reactivated: N_("Ansatt aktivert igjen"),
    AuditKind.staff_sign_in_reset: N_("Innlogging tilbakestilt"),
    AuditKind.minutes_adjusted: N_("Minutter justert"),
    AuditKind.price_changed: N_("Pris endret"),
    AuditKind.company_edited: N_("Firma endret"),
    AuditKind.company_deactivated: N_("Firma deaktivert"),
    AuditKind.company_reactivated: N_("Firma aktivert igjen"),
    AuditKind.superuser_moved: N_("Superbruker flyttet"),
    AuditKind.refund: N_("Refusjon"),
    AuditKind.expiry_extended: N_("Utløp forlenget"),
    AuditKind.import_: N_("Import"),
    AuditKind.product_changed: N_("Produkt endret"),
    AuditKind.settings_changed: N_("Innstillinger endret"),
    AuditKind.products_added: N_("Produkter lagt til tidskontoen"),
    AuditKind.advisory_published: N_("Oppdateringsråd publisert"),
    AuditKind.advisory_revised: N_("Oppdateringsråd revidert"),
    AuditKind.advisory_withdrawn: N_("Oppdateringsråd trukket tilbake"),
}


def _id(thing: Any) -> int | None:
    if thing is None or isinstance(thing, int):
        return thing
    return thing.id


def _json(value: Any) -> str:
    return (
        "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    )


async def record(
    actor: User | int | None,
    kind: AuditKind,
    *,
    company: Company | int | None = None,
    subject: str = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> None:
    """One entry: `actor` did `kind` (to `subject`, of `company`), changing `before` into
    `after` (anything JSON can hold; None for nothing), because of `reason`. Call it inside
    the transaction of the action it records."""
    await AuditEntry.insert(
        AuditEntry(
            actor=_id(actor),
            kind=AuditKind(kind).value,
            company=_id(company),
            subject=subject[:200],
            before=_json(before),
            after=_json(after),
            reason=reason,
        )
    )


KIND_UNKNOWN = N_("Ukjent type i filteret.")


def _known_kind(kind: str) -> str:
    if kind not in set(AuditKind):
        raise validation.FieldError(KIND_UNKNOWN)
    return kind


class AuditFilter(msgspec.Struct):
    """The audit page's filters; 0 and "" for every one."""

    company: validation.field(
        int, ge=0, le=validation.MAX_ID, message=N_("Ugyldig firma i filteret.")
    ) = 0
    actor: validation.field(
        int, ge=0, le=validation.MAX_ID, message=N_("Ugyldig person i filteret.")
    ) = 0
    kind: validation.field(str, max_length=40, message=KIND_UNKNOWN, check=_known_kind) = ""
    # Keyset paging: entries older than this id.
    before: validation.field(int, ge=0, le=validation.MAX_ID, message=N_("Ugyldig side.")) = 0


@dataclass(frozen=True)
class Shown:
    """One entry as the page shows it."""

    id: int
    created_at: datetime.datetime
    actor_name: str
    actor_email: str
    kind: str
    company_id: int | None
    company_name: str
    subject: str
    before: str
    after: str
    reason: str


@dataclass(frozen=True)
class Page:
    entries: list[Shown]
    # The id to ask `before` for the next (older) page; None on the last.
    next_before: int | None


async def entries(found_by: AuditFilter, *, limit: int = PAGE_SIZE) -> Page:
    """The entries matching the filters, newest first, `limit` at a time (keyset by id)."""
    query = AuditEntry.select(
        AuditEntry.id,
        AuditEntry.created_at,
        AuditEntry.actor.name.as_alias("actor_name"),
        AuditEntry.actor.email.as_alias("actor_email"),
        AuditEntry.kind,
        AuditEntry.company.as_alias("company_id"),
        AuditEntry.company.name.as_alias("company_name"),
        AuditEntry.subject,
        AuditEntry.before,
        AuditEntry.after,
        AuditEntry.reason,
    )
    if found_by.company:
        query = query.where(AuditEntry.company == found_by.company)
    if found_by.actor:
        query = query.where(AuditEntry.actor == found_by.actor)
    if found_by.kind:
        query = query.where(AuditEntry.kind == found_by.kind)
    if found_by.before:
        query = query.where(AuditEntry.id < found_by.before)
    rows = await query.order_by(AuditEntry.id, ascending=False).limit(limit + 1)
    shown = [
        Shown(
            **{
                **row,
                "actor_name": row["actor_name"] or "",
                "actor_email": row["actor_email"] or "",
                "company_name": row["company_name"] or "",
            }
        )
        for row in rows[:limit]
    ]
    return Page(entries=shown, next_before=shown[-1].id if len(rows) > limit else None)


async def actors() -> list[dict[str, Any]]:
    """Staff who may appear as actors, for the filter: id, name, e-mail."""
    return await (
        User.select(User.id, User.name, User.email)
        .where(User.role.is_in(["technician", "admin"]))
        .order_by(User.name)
    )
