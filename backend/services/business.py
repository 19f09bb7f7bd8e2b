"""The business's own settings an admin edits in the back office (issue 12): the seller a
receipt names, the extra closed days (SPEC §3) and the low-balance threshold a new company
starts with (SPEC §7). One row in the database; whatever it leaves unset is the
configuration's (config.py's seller, availability.EXTRA_CLOSED_DAYS, 60 minutes).

Everyone asks `current()` (or reads `settings_json` inside the query their page runs anyway):
receipts, availability, registration. Availability is on almost every page, so the hot pages
read the row as one more column of the statement they already make (catalog.offer_columns,
the dashboard's overview) rather than through a cache: a cache in one process would keep
showing the old closed days after an admin saved new ones in another, and a query per page
costs real throughput (STACK.md). The row is tiny; reading it inside a statement is free.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass, replace
from typing import Any

import msgspec
from piccolo.engine.base import Engine

from backend.config import Seller
from backend.db import fetch, from_json, json_rows, lock_row, write_transaction
from backend.i18n import N_
from backend.services import audit, clock, outbox, policy, validation
from backend.services.availability import EXTRA_CLOSED_DAYS
from backend.services.validation import FieldError
from backend.tables import AuditKind, BusinessSettings, User

DEFAULT_LOW_BALANCE_MINUTES = 60  # SPEC §7; Company.low_balance_minutes's default too
# As the company's own threshold form allows (warnings.MAX_LOW_BALANCE_MINUTES): the
# largest top-up.
MAX_LOW_BALANCE_MINUTES = 200 * 60
MAX_CLOSED_DAYS = 40
CLOSED_DAYS_MESSAGE = N_("Skriv dagene som dd.mm, skilt med komma (f.eks. 24.12, 31.12).")
REASON_REQUIRED = N_("Skriv en begrunnelse.")


@dataclass(frozen=True)
class Business:
    seller: Seller
    extra_closed_days: tuple[tuple[int, int], ...]  # (month, day), every year
    low_balance_minutes: int


class Stored(msgspec.Struct, frozen=True):
    """The row as it is stored: None for what the configuration decides."""

    seller_name: str | None = None
    seller_org_number: str | None = None
    seller_address: str | None = None
    extra_closed_days: str | None = None
    low_balance_minutes: int | None = None


def defaults() -> Business:
    """What the configuration says, for everything the row leaves unset."""
    return Business(
        seller=outbox.current_settings().seller,
        extra_closed_days=EXTRA_CLOSED_DAYS,
        low_balance_minutes=DEFAULT_LOW_BALANCE_MINUTES,
    )


def format_closed_days(days: tuple[tuple[int, int], ...]) -> str:
    """((12, 24), (12, 31)) → "24.12, 31.12", as the form shows them."""
    return ", ".join(f"{day:02d}.{month:02d}" for month, day in days)


def _stored_days(text: str) -> tuple[tuple[int, int], ...]:
    """The stored "MM-DD,MM-DD" → ((month, day), ...)."""
    days = []
    for item in text.split(","):
        if item.strip():
            month, day = item.strip().split("-")
            days.append((int(month), int(day)))
    return tuple(days)


def resolve(stored: Stored | None) -> Business:
    """The settings in force: the row's, the configuration's where the row says nothing."""
    base = defaults()
    if stored is None:
        return base
    seller = Seller(
        name=stored.seller_name or base.seller.name,
        org_number=stored.seller_org_number
        if stored.seller_org_number is not None
        else base.seller.org_number,
        address=stored.seller_address if stored.seller_address is not None else base.seller.address,
    )
    return replace(
        base,
        seller=seller,
        extra_closed_days=base.extra_closed_days
        if stored.extra_closed_days is None
        else _stored_days(stored.extra_closed_days),
        low_balance_minutes=base.low_balance_minutes
        if stored.low_balance_minutes is None
        else stored.low_balance_minutes,
    )


@functools.cache
def settings_json(engine: Engine) -> str:
    """The row as one column of a page's single query (`[]` when never saved); read back with
    `from_column`."""
    columns = list(Stored.__struct_fields__)
    return json_rows(
        engine,
        f"SELECT {', '.join(columns)}, id FROM business_settings ORDER BY id LIMIT 1",
        [*columns, "id"],
        order_by="id",
    )


def from_column(value: Any) -> Business:
    rows = from_json(value, list[Stored]) if value is not None else []
    return resolve(rows[0] if rows else None)


async def current() -> Business:
    """The settings in force now (one statement)."""
    [row] = await fetch(
        BusinessSettings, f"SELECT {settings_json(BusinessSettings._meta.db)} AS business"
    )
    return from_column(row["business"])


# --- the admin's form ------------------------------------------------------------------------


def closed_days(value: str) -> tuple[tuple[int, int], ...]:
    """ "24.12, 31.12" (or "24.12.") → ((12, 24), (12, 31)), each a real day of some year,
    sorted, once each; "" → none."""
    found: set[tuple[int, int]] = set()
    for item in re.split(r"[,;\s]+", value.strip()):
        if not item:
            continue
        match = re.fullmatch(r"([0-9]{1,2})\.([0-9]{1,2})\.?", item, re.ASCII)
        if match is None:
            raise FieldError(CLOSED_DAYS_MESSAGE)
        day, month = int(match[1]), int(match[2])
        try:
            datetime.date(2000, month, day)  # a leap year: 29.02 is a day
        except ValueError:
            raise FieldError(CLOSED_DAYS_MESSAGE) from None
        found.add((month, day))
    if len(found) > MAX_CLOSED_DAYS:
        raise FieldError(N_("Høyst 40 ekstra stengte dager."))
    return tuple(sorted(found))


def _closed_days_stored(value: str) -> str:
    """The form's closed days as they are stored: "12-24,12-31"."""
    return ",".join(f"{month:02d}-{day:02d}" for month, day in closed_days(value))


def _optional_org_number(value: str) -> str:
    return validation.org_number(value) if value.strip() else ""


class SettingsForm(msgspec.Struct):
    seller_name: validation.line(200, required=N_("Skriv selgerens navn."))
    seller_address: validation.line(300, optional=True)
    extra_closed_days: validation.field(
        str, max_length=400, message=CLOSED_DAYS_MESSAGE, check=_closed_days_stored
    )
    low_balance_minutes: validation.field(
        int,
        ge=0,
        le=MAX_LOW_BALANCE_MINUTES,
        message=N_("Skriv et helt antall minutter fra 0 til 12000."),
    )
    reason: validation.line(500, required=REASON_REQUIRED)
    seller_org_number: validation.field(
        str,
        max_length=40,
        message=validation.ORG_NUMBER_INVALID,
        check=_optional_org_number,
    ) = ""


def form_values(settings: Business) -> dict[str, str]:
    """The form filled in with the settings in force."""
    return {
        "seller_name": settings.seller.name,
        "seller_org_number": validation.format_org_number(settings.seller.org_number)
        if settings.seller.org_number
        else "",
        "seller_address": settings.seller.address,
        "extra_closed_days": format_closed_days(settings.extra_closed_days),
        "low_balance_minutes": str(settings.low_balance_minutes),
    }


def _as_audited(settings: Business) -> dict[str, Any]:
    return {
        "seller_name": settings.seller.name,
        "seller_org_number": settings.seller.org_number,
        "seller_address": settings.seller.address,
        "extra_closed_days": format_closed_days(settings.extra_closed_days),
        "low_balance_minutes": settings.low_balance_minutes,
    }


async def update(admin: User, form: SettingsForm) -> bool:
    """Save the admin's settings, with one audit entry (before → after, the reason). Saving
    what is in force already changes nothing and records nothing (False)."""
    policy.require(admin, "manage_catalog")
    days = _stored_days(form.extra_closed_days)
    values = {
        BusinessSettings.seller_name: form.seller_name,
        BusinessSettings.seller_org_number: form.seller_org_number,
        BusinessSettings.seller_address: form.seller_address,
        BusinessSettings.extra_closed_days: form.extra_closed_days,
        BusinessSettings.low_balance_minutes: form.low_balance_minutes,
        BusinessSettings.updated_by: admin.id,
        BusinessSettings.updated_at: clock.now(),
    }
    async with write_transaction(BusinessSettings._meta.db):
        # The one row, made empty (all unset) if it is not there yet, and held: two admins
        # saving at once are one after the other, each audited against what it replaced.
        await BusinessSettings.insert(BusinessSettings()).on_conflict(action="DO NOTHING")
        row = await BusinessSettings.select(BusinessSettings.id).first()
        await lock_row(BusinessSettings, row["id"])
        before = await current()
        after = Business(
            seller=Seller(form.seller_name, form.seller_org_number, form.seller_address),
            extra_closed_days=days,
            low_balance_minutes=form.low_balance_minutes,
        )
        if after == before:
            return False
        await BusinessSettings.update(values).where(BusinessSettings.id == row["id"])
        await audit.record(
            admin,
            AuditKind.settings_changed,
            subject="business_settings",
            before=_as_audited(before),
            after=_as_audited(after),
            reason=form.reason,
        )
    return True
