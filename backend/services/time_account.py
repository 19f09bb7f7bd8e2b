"""The time account as the customer follows it (SPEC §2 alternative 2, §7): what is left,
lot by lot, and the latest movements of minutes, read in one statement."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

import msgspec
from piccolo.engine.base import Engine

from backend.db import fetch, from_json, json_rows, json_values
from backend.i18n import N_
from backend.services import catalog, coverage, ledger
from backend.services.clock import OSLO
from backend.tables import Company, EntryKind

LATEST_ENTRIES = 10

# What each kind of entry is called on the customer's pages.
ENTRY_LABELS = {
    EntryKind.credit.value: N_("Kjøp av timer"),
    EntryKind.debit.value: N_("Support"),
    EntryKind.expiry.value: N_("Utløpt, avskrevet"),
    EntryKind.refund_write_off.value: N_("Refundert, avskrevet"),
    EntryKind.adjustment.value: N_("Justering"),
    EntryKind.reversal.value: N_("Tilbakeført (annullert timeføring)"),
    EntryKind.expiry_extension.value: N_("Utløpsdato forlenget"),
    EntryKind.import_.value: N_("Overført fra tidligere avtale"),
}


class AccountLot(msgspec.Struct, frozen=True):
    id: int
    minutes: int
    remaining_minutes: int
    expires_on: datetime.date  # usable on the days before (ledger.lot_expires_on)
    bought_at: datetime.datetime
    product_codes: list[str]

    @property
    def bought_on(self) -> datetime.date:
        return self.bought_at.astimezone(OSLO).date()


class AccountEntry(msgspec.Struct, frozen=True):
    id: int
    kind: str
    minutes: int  # signed: + into the account, - out of it
    created_at: datetime.datetime
    note: str
    ticket_id: int | None  # the ticket a debit or reversal was for
    ticket_subject: str | None

    @property
    def reason(self) -> str:
        return customer_reason(self.kind, self.note)


def customer_reason(kind: str, note: str) -> str:
    """What the customer is told of why minutes moved: an admin's reason for an adjustment or
    an expiry extension (its note names the old and new date and the reason), and the old
    contract and original dates of a lot imported from before the portal.
    The other kinds say it with their label and ticket (their notes are for staff)."""
    customer_kinds = (
        EntryKind.adjustment.value,
        EntryKind.expiry_extension.value,
        EntryKind.import_.value,
    )
    return note if kind in customer_kinds else ""


@dataclass(frozen=True)
class TimeAccount:
    today: datetime.date
    lots: list[AccountLot]  # every lot, newest first
    entries: list[AccountEntry]  # the latest LATEST_ENTRIES, newest first
    product_names: dict[str, str]  # catalog code → name

    @property
    def open_lots(self) -> list[AccountLot]:
        """The lots with minutes left to use, the one debited first (expiring first) first."""
        usable = [lot for lot in self.lots if self._usable(lot)]
        return sorted(usable, key=lambda lot: (lot.expires_on, lot.id))

    @property
    def closed_lots(self) -> list[AccountLot]:
        """Expired or used up, newest first: shown folded away."""
        return [lot for lot in self.lots if not self._usable(lot)]

    @property
    def remaining_minutes(self) -> int:
        return sum(lot.remaining_minutes for lot in self.open_lots)

    @property
    def open_minutes(self) -> int:
        """What the open lots held when bought: the bar's whole."""
        return sum(lot.minutes for lot in self.open_lots)

    def names(self, codes: list[str]) -> str:
        return ", ".join(self.product_names.get(code, code) for code in codes)

    def _usable(self, lot: AccountLot) -> bool:
        return ledger.lot_usable(lot.remaining_minutes, lot.expires_on, self.today)


async def time_account(company_id: int, today: datetime.date) -> TimeAccount:
    engine = Company._meta.db
    [row] = await fetch(Company, _account_sql(engine), company_id, company_id)
    return TimeAccount(
        today=today,
        lots=from_json(row["lots"], list[AccountLot]),
        entries=from_json(row["entries"], list[AccountEntry]),
        product_names={p["code"]: p["name"] for p in from_json(row["products"])},
    )


@functools.cache
def _account_sql(engine: Engine) -> str:
    codes = json_values(
        engine,
        "SELECT lp.product_code, lp.id FROM lot_product AS lp WHERE lp.lot = l.id ORDER BY lp.id",
        "product_code",
        order_by="id",
    )
    lots = json_rows(
        engine,
        "SELECT l.id, l.minutes, l.remaining_minutes, l.expires_on, l.created_at AS bought_at,"
        f" {codes} AS product_codes FROM time_lot AS l WHERE l.company = {{}}"
        " ORDER BY l.id DESC",
        AccountLot.__struct_fields__,
        order_by="id DESC",
        json_columns=("product_codes",),
    )
    entries = json_rows(
        engine,
        "SELECT le.id, le.kind, le.minutes, le.created_at, le.note, t.id AS ticket_id,"
        " t.subject AS ticket_subject FROM ledger_entry AS le"
        " JOIN ledger_operation AS o ON o.id = le.operation"
        f"{coverage.paid_entry_joins('o')}"
        " LEFT JOIN time_entry AS te ON le.cause_type = 'time_entry'"
        " AND te.id = coalesce(td.id, tr.id)"
        " LEFT JOIN ticket AS t ON t.id = te.ticket"
        # By time (an index of the company's entries has it), not by id alone: see the index.
        " WHERE le.company = {}"
        f" ORDER BY le.created_at DESC, le.id DESC LIMIT {LATEST_ENTRIES}",
        AccountEntry.__struct_fields__,
        order_by="created_at DESC, id DESC",
    )
    products = catalog.products_json(engine)
    return f"SELECT {lots} AS lots, {entries} AS entries, {products} AS products"
