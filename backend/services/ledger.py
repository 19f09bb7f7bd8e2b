"""The time account's ledger (SPEC §5): minutes move only through here.

Invariants, on SQLite and PostgreSQL alike, under concurrent requests:
- a lot's `remaining_minutes` equals the sum of its ledger entries;
- no lot goes below zero;
- the balance is the sum of the unexpired lots;
- the same idempotency key never moves minutes twice.

Every change of `remaining_minutes` is a conditional UPDATE (`… WHERE remaining_minutes >= n`)
written in the same transaction as its ledger entry, so two writers can never both take the
same minutes, and a failure leaves neither.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from piccolo.query.functions.aggregate import Sum

from backend.db import is_unique_violation, write_transaction
from backend.tables import EntryKind, LedgerEntry, Lot


@dataclass(frozen=True)
class Cause:
    """Why minutes moved: an order, a time entry, an admin's decision, or the system (expiry)."""

    type: str
    id: str = ""
    note: str = ""
    user_id: int | None = None


@dataclass(frozen=True)
class DebitResult:
    debited_minutes: int
    uncovered_minutes: int  # what no lot could cover: billed hourly by the caller


def _engine():
    return Lot._meta.db


def _covers(lot: Lot, product_code: str | None) -> bool:
    return product_code is None or product_code in lot.product_codes.split(",")


async def _entry(lot: Lot, kind: EntryKind, minutes: int, key: str, cause: Cause) -> LedgerEntry:
    entry = LedgerEntry(
        company=lot.company,
        lot=lot.id,
        kind=kind.value,
        minutes=minutes,
        idempotency_key=key,
        cause_type=cause.type,
        cause_id=cause.id,
        note=cause.note,
        created_by=cause.user_id,
    )
    await entry.save()
    return entry


async def _take(lot_id: int, wanted: int) -> int:
    """Take up to `wanted` minutes from a lot, never below zero. Returns what was taken."""
    while wanted > 0:
        taken = (
            await Lot.update({Lot.remaining_minutes: Lot.remaining_minutes - wanted})
            .where((Lot.id == lot_id) & (Lot.remaining_minutes >= wanted))
            .returning(Lot.remaining_minutes)
        )
        if taken:
            return wanted
        # Someone took minutes meanwhile: re-read and take what is left.
        row = await Lot.select(Lot.remaining_minutes).where(Lot.id == lot_id).first()
        wanted = min(wanted, row["remaining_minutes"] if row else 0)
    return 0


async def _give(lot_id: int, minutes: int) -> None:
    await Lot.update({Lot.remaining_minutes: Lot.remaining_minutes + minutes}).where(
        Lot.id == lot_id
    )


async def _existing(key_prefix: str) -> list[LedgerEntry]:
    """Entries keyed `key_prefix` or `key_prefix:…` (a range, so no LIKE wildcards apply)."""
    key = LedgerEntry.idempotency_key
    return (
        await LedgerEntry.objects()
        .where((key == key_prefix) | ((key >= f"{key_prefix}:") & (key < f"{key_prefix};")))
        .order_by(LedgerEntry.id)
    )


async def credit_lot(
    *,
    company_id: int,
    minutes: int,
    expires_on: datetime.date,
    product_codes: Iterable[str],
    key: str,
    cause: Cause,
    order_id: int | None = None,
) -> Lot:
    """A new lot of `minutes`, usable before `expires_on`, with its credit entry."""
    if minutes <= 0:
        raise ValueError("a lot holds a positive number of minutes")
    try:
        async with write_transaction(_engine()):
            earlier = await LedgerEntry.objects().get(LedgerEntry.idempotency_key == key)
            if earlier is not None:
                return await Lot.objects().get(Lot.id == earlier.lot)
            lot = Lot(
                company=company_id,
                order=order_id,
                minutes=minutes,
                remaining_minutes=minutes,
                product_codes=",".join(product_codes),
                expires_on=expires_on,
            )
            await lot.save()
            await _entry(lot, EntryKind.credit, minutes, key, cause)
            return lot
    except Exception as error:
        if not is_unique_violation(error):
            raise
    # A concurrent request with the same key won: return its lot.
    entry = await LedgerEntry.objects().get(LedgerEntry.idempotency_key == key)
    return await Lot.objects().get(Lot.id == entry.lot)


async def debit(
    *,
    company_id: int,
    minutes: int,
    on_date: datetime.date,
    key: str,
    cause: Cause,
    product_code: str | None = None,
) -> DebitResult:
    """Take `minutes` from the lots that expire first (then oldest), only lots valid on
    `on_date` that cover `product_code`. What they cannot cover is returned as uncovered.

    Entries are keyed `key:1`, `key:2`, … (one per lot touched); a replay of the same key
    returns the earlier result without moving anything.
    """
    if minutes <= 0:
        raise ValueError("a debit takes a positive number of minutes")
    try:
        async with write_transaction(_engine()):
            earlier = await _existing(key)
            if earlier:
                return _replayed(earlier, minutes)
            lots = (
                await Lot.objects()
                .where(
                    (Lot.company == company_id)
                    & (Lot.remaining_minutes > 0)
                    & (Lot.expires_on > on_date)
                )
                .order_by(Lot.expires_on, Lot.id)
            )
            needed = minutes
            part = 0
            for lot in lots:
                if needed == 0:
                    break
                if not _covers(lot, product_code):
                    continue
                taken = await _take(lot.id, min(needed, lot.remaining_minutes))
                if taken:
                    part += 1
                    await _entry(lot, EntryKind.debit, -taken, f"{key}:{part}", cause)
                    needed -= taken
            return DebitResult(debited_minutes=minutes - needed, uncovered_minutes=needed)
    except Exception as error:
        if not is_unique_violation(error):
            raise
    return _replayed(await _existing(key), minutes)


def _replayed(entries: list[LedgerEntry], minutes: int) -> DebitResult:
    debited = -sum(e.minutes for e in entries if e.kind == EntryKind.debit.value)
    return DebitResult(debited_minutes=debited, uncovered_minutes=minutes - debited)


async def write_off(
    *, lot_id: int, max_minutes: int | None, kind: EntryKind, key: str, cause: Cause
) -> int:
    """Write off a lot's unused minutes (all, or at most `max_minutes`). Returns the minutes."""
    try:
        async with write_transaction(_engine()):
            earlier = await LedgerEntry.objects().get(LedgerEntry.idempotency_key == key)
            if earlier is not None:
                return -earlier.minutes
            lot = await Lot.objects().get(Lot.id == lot_id)
            wanted = lot.remaining_minutes if max_minutes is None else max_minutes
            taken = await _take(lot.id, min(wanted, lot.remaining_minutes))
            if taken:
                await _entry(lot, kind, -taken, key, cause)
            return taken
    except Exception as error:
        if not is_unique_violation(error):
            raise
    entry = await LedgerEntry.objects().get(LedgerEntry.idempotency_key == key)
    return -entry.minutes if entry else 0


async def expire_lots(today: datetime.date, company_id: int | None = None) -> int:
    """Write off, by an expiry entry each, the unused minutes of every lot whose day has come.
    Safe to run any time and from several places at once. Returns the minutes written off."""
    condition = (Lot.remaining_minutes > 0) & (Lot.expires_on <= today)
    if company_id is not None:
        condition &= Lot.company == company_id
    total = 0
    for lot in await Lot.objects().where(condition):
        total += await write_off(
            lot_id=lot.id,
            max_minutes=None,
            kind=EntryKind.expiry,
            # One expiry per lot and day: a lot given minutes back after expiry (a reversal)
            # expires again the same way.
            key=f"expiry:{lot.id}:{today.isoformat()}:{lot.remaining_minutes}",
            cause=Cause(type="system", note="Utløpt"),
        )
    return total


async def reverse(*, original_key: str, key: str, cause: Cause, today: datetime.date) -> int:
    """Give back, to the lots they came from, the minutes a debit took (a voided time entry).
    Minutes given back to a lot that has expired since are written off again at once.
    Returns the minutes given back; a replay of `key` moves nothing and returns 0."""
    given = 0
    try:
        async with write_transaction(_engine()):
            if await _existing(key):
                return 0
            for entry in await _existing(original_key):
                if entry.kind != EntryKind.debit.value:
                    continue
                minutes = -entry.minutes
                lot = await Lot.objects().get(Lot.id == entry.lot)
                await _give(lot.id, minutes)
                await _entry(lot, EntryKind.reversal, minutes, f"{key}:{entry.id}", cause)
                given += minutes
                if lot.expires_on <= today:
                    await _take(lot.id, minutes)
                    expired = Cause(type="system", note="Utløpt før tilbakeføringen")
                    await _entry(lot, EntryKind.expiry, -minutes, f"{key}:{entry.id}:x", expired)
    except Exception as error:
        if not is_unique_violation(error):
            raise
        return 0
    return given


async def balance(company_id: int, today: datetime.date) -> int:
    """Unexpired minutes of the company (expired lots are written off first)."""
    await expire_lots(today, company_id)
    rows = await Lot.select(Sum(Lot.remaining_minutes).as_alias("total")).where(
        (Lot.company == company_id) & (Lot.expires_on > today)
    )
    return int(rows[0]["total"] or 0) if rows else 0


async def open_lots(company_id: int, today: datetime.date) -> list[Lot]:
    """Lots with minutes left, the one that expires first first."""
    await expire_lots(today, company_id)
    return (
        await Lot.objects()
        .where((Lot.company == company_id) & (Lot.expires_on > today) & (Lot.remaining_minutes > 0))
        .order_by(Lot.expires_on, Lot.id)
    )


async def entries_sum_by_lot(company_id: int | None = None) -> dict[int, int]:
    """Sum of the ledger per lot: must equal each lot's remaining minutes (for checks)."""
    query = LedgerEntry.select(LedgerEntry.lot, Sum(LedgerEntry.minutes).as_alias("total"))
    if company_id is not None:
        query = query.where(LedgerEntry.company == company_id)
    rows = await query.group_by(LedgerEntry.lot)
    return {row["lot"]: int(row["total"]) for row in rows}


async def entries_of_lot(lot_id: int) -> list[LedgerEntry]:
    return await LedgerEntry.objects().where(LedgerEntry.lot == lot_id).order_by(LedgerEntry.id)
