"""The time account's ledger (SPEC §5): minutes move only through here.

Invariants, on SQLite and PostgreSQL alike, under concurrent requests:
- a lot's `remaining_minutes` equals the sum of its ledger entries;
- no lot goes below zero;
- the balance is the sum of the unexpired lots;
- the same idempotency key never moves minutes twice.
- each operation's `balance_after` is the sum of its company's entries up to it, in the
  order (created_at, id) the statement shows: operations of a company are written one at a
  time (the company row locked on PostgreSQL), each after the last one.

Each call is one `LedgerOperation` (unique idempotency key), recorded even when it moves
nothing, and its entries name it. Every change of `remaining_minutes` is a conditional UPDATE
(`… WHERE remaining_minutes >= n`) in the same transaction as its entry, so two writers never
take the same minutes and a failure leaves neither.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import msgspec
from piccolo.query.functions.aggregate import Sum

from backend.db import (
    date_parameter,
    fetch,
    from_json,
    is_unique_violation,
    json_rows,
    json_values,
    lock_row,
    write_transaction,
)
from backend.i18n import N_
from backend.services import agreements, audit, catalog
from backend.services.errors import NotFound, ValidationFailed
from backend.services.validation import FieldError, convert, field, line
from backend.tables import (
    AuditKind,
    Company,
    EntryKind,
    LedgerEntry,
    LedgerOperation,
    Lot,
    LotProduct,
    Order,
)


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


class IdempotencyKeyConflict(RuntimeError):
    """Two callers minted the same idempotency key for different companies: a bug in how the
    key is made, never a replay."""


def _replay(earlier: LedgerOperation, key: str, company_id: int) -> LedgerOperation:
    # Keys are unique across all companies. Answering one company's call with another's
    # operation would move nothing and say it had (a void that gives no minutes back).
    if earlier.company != company_id:
        raise IdempotencyKeyConflict(
            f"idempotency key {key!r} belongs to company {earlier.company}, not {company_id}"
        )
    return earlier


async def _once(
    key: str,
    company_id: int,
    kind: EntryKind,
    minutes: int,
    act: Callable[[LedgerOperation], Awaitable[int]],
    then: Callable[[LedgerOperation], Awaitable[None]] | None = None,
) -> tuple[LedgerOperation, bool]:
    """Run `act` once per idempotency key, in one write transaction with its operation record,
    and `then` (e.g. an audit entry) in the same transaction after it, never on a replay.
    Returns the operation and whether this call did the work (False: a replay)."""
    # Inside a caller's transaction a unique violation has aborted that transaction (on
    # PostgreSQL): only the caller can recover, after it ends.
    nested = _engine().current_transaction.get() is not None
    try:
        async with write_transaction(_engine()):
            earlier = await LedgerOperation.objects().get(LedgerOperation.idempotency_key == key)
            if earlier is not None:
                return _replay(earlier, key, company_id), False
            # One operation of a company at a time (SQLite's writes are one at a time anyway),
            # each after the last one in the statement's order, starting from its balance.
            await lock_row(Company, company_id)
            last = await (
                LedgerOperation.select(LedgerOperation.balance_after, LedgerOperation.created_at)
                .where(LedgerOperation.company == company_id)
                .order_by(LedgerOperation.created_at, LedgerOperation.id, ascending=False)
                .first()
            )
            now = datetime.datetime.now(datetime.UTC)
            operation = LedgerOperation(
                idempotency_key=key,
                company=company_id,
                kind=kind.value,
                requested_minutes=minutes,
                # Another instance's clock may lag behind the last writer's.
                created_at=max(now, last["created_at"]) if last else now,
            )
            await operation.save()
            operation.moved_minutes = await act(operation)
            await fetch(
                LedgerOperation,
                "UPDATE ledger_operation SET moved_minutes = {}, balance_after = {}"
                " + (SELECT coalesce(sum(e.minutes), 0) FROM ledger_entry AS e"
                " WHERE e.operation = {}) WHERE id = {}",
                operation.moved_minutes,
                last["balance_after"] if last else 0,
                operation.id,
                operation.id,
            )
            if then is not None:
                await then(operation)
            return operation, True
    except Exception as error:
        if nested or not is_unique_violation(error):
            raise
    # A concurrent call with the same key committed first.
    earlier = await LedgerOperation.objects().get(LedgerOperation.idempotency_key == key)
    return _replay(earlier, key, company_id), False


async def _entry(
    operation: LedgerOperation, lot: Lot, kind: EntryKind, minutes: int, cause: Cause, n: int = 1
) -> None:
    await LedgerEntry(
        company=lot.company,
        lot=lot.id,
        operation=operation.id,
        kind=kind.value,
        minutes=minutes,
        idempotency_key=f"{operation.idempotency_key}:{n}",
        cause_type=cause.type,
        cause_id=cause.id,
        note=cause.note,
        created_by=cause.user_id,
    ).save()


def lot_expires_on(bought_on: datetime.date) -> datetime.date:
    """A lot is valid one year from the day it was bought (SPEC §2): usable on the days before
    this date."""
    return agreements.add_years(bought_on, 1)


def last_usable_day(expires_on: datetime.date) -> datetime.date:
    """The last day a lot pays for support: what pages name, "til og med", as for a plan."""
    return expires_on - datetime.timedelta(days=1)


def expires_after(last_day: datetime.date) -> datetime.date:
    """The `expires_on` of a lot usable up to and including `last_day` (`last_usable_day`'s
    inverse)."""
    return last_day + datetime.timedelta(days=1)


def usable_on(on_date: datetime.date):
    """A lot pays for support on days before `expires_on` while it has minutes left (SPEC §2).
    (`open_lots_json` says the same in SQL, and `lot_usable` in Python, for pages read in one
    round trip.)"""
    return (Lot.remaining_minutes > 0) & (Lot.expires_on > on_date)


def lot_usable(remaining_minutes: int, expires_on: datetime.date, on_date: datetime.date) -> bool:
    """`usable_on` for a lot already read."""
    return remaining_minutes > 0 and expires_on > on_date


async def lots_paying_for(company_id: int, product_code: str, on_date: datetime.date) -> list[Lot]:
    """The lots that pay for support on `product_code` on `on_date`, the one that expires first
    first (then the oldest): unexpired, with minutes left, covering the product (SPEC §2)."""
    covering = LotProduct.select(LotProduct.lot).where(LotProduct.product_code == product_code)
    return (
        await Lot.objects()
        .where((Lot.company == company_id) & usable_on(on_date) & Lot.id.is_in(covering))
        .order_by(Lot.expires_on, Lot.id)
    )


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


async def credit_lot(
    *,
    company_id: int,
    minutes: int,
    expires_on: datetime.date,
    product_codes: Iterable[str],
    key: str,
    cause: Cause,
    order_id: int | None = None,
    kind: EntryKind = EntryKind.credit,
    then: Callable[[LedgerOperation], Awaitable[None]] | None = None,
    bought_at: datetime.datetime | None = None,
) -> Lot:
    """A new lot of `minutes`, usable before `expires_on`, with its credit entry (and `then`,
    as `_once` runs it). `bought_at`: when it was bought, if not now (a lot imported from
    before the portal keeps its original purchase date)."""
    if minutes <= 0:
        raise ValueError("a lot holds a positive number of minutes")
    codes = list(dict.fromkeys(product_codes))
    if not codes:
        raise ValueError("a lot pays for at least one product")

    async def act(operation: LedgerOperation) -> int:
        lot = Lot(
            company=company_id,
            order=order_id,
            minutes=minutes,
            remaining_minutes=minutes,
            expires_on=expires_on,
        )
        if bought_at is not None:
            lot.created_at = bought_at
        await lot.save()
        await _cover(lot, codes)
        await _entry(operation, lot, kind, minutes, cause)
        return minutes

    operation, _ = await _once(key, company_id, kind, minutes, act, then)
    entry = await LedgerEntry.objects().get(LedgerEntry.operation == operation.id)
    return await Lot.objects().get(Lot.id == entry.lot)


async def _cover(lot: Lot, product_codes: list[str]) -> None:
    await LotProduct.insert(*(LotProduct(lot=lot.id, product_code=c) for c in product_codes))


async def debit(
    *,
    company_id: int,
    minutes: int,
    on_date: datetime.date,
    key: str,
    cause: Cause,
    product_code: str | None = None,
    kind: EntryKind = EntryKind.debit,
    then: Callable[[LedgerOperation], Awaitable[None]] | None = None,
) -> DebitResult:
    """Take `minutes` from the lots that expire first (then the oldest), only lots valid on
    `on_date` that cover `product_code`; what they cannot cover is returned as uncovered.
    A replay of `key` moves nothing and returns the first call's result."""
    if minutes <= 0:
        raise ValueError("a debit takes a positive number of minutes")

    async def act(operation: LedgerOperation) -> int:
        if product_code is None:
            lots = await _usable_lots(company_id, on_date)
        else:
            lots = await lots_paying_for(company_id, product_code, on_date)
        needed, part = minutes, 0
        for lot in lots:
            if needed == 0:
                break
            taken = await _take(lot.id, min(needed, lot.remaining_minutes))
            if taken:
                part += 1
                await _entry(operation, lot, kind, -taken, cause, part)
                needed -= taken
        return minutes - needed

    operation, _ = await _once(key, company_id, kind, minutes, act, then)
    return DebitResult(
        debited_minutes=operation.moved_minutes,
        uncovered_minutes=minutes - operation.moved_minutes,
    )


async def write_off(
    *, lot_id: int, max_minutes: int | None, kind: EntryKind, key: str, cause: Cause
) -> int:
    """Write off a lot's unused minutes (all, or at most `max_minutes`). Returns the minutes."""
    lot = await Lot.objects().get(Lot.id == lot_id)

    async def act(operation: LedgerOperation) -> int:
        current = await Lot.objects().get(Lot.id == lot_id)
        wanted = current.remaining_minutes if max_minutes is None else max_minutes
        taken = await _take(lot_id, min(wanted, current.remaining_minutes))
        if taken:
            await _entry(operation, current, kind, -taken, cause)
        return taken

    operation, _ = await _once(key, lot.company, kind, max_minutes or 0, act)
    return operation.moved_minutes


async def expire_lots(today: datetime.date, company_id: int | None = None) -> int:
    """Write off, by an expiry entry each, the unused minutes of every lot whose day has come.
    Safe to run any time and from several places at once (every instance's hourly sweep,
    `portal expire-lots`): the key names the lot, the day and its minutes, so a second run
    moves nothing. Reads never call it: they count only unexpired lots. Returns the minutes."""
    condition = (Lot.remaining_minutes > 0) & (Lot.expires_on <= today)
    if company_id is not None:
        condition &= Lot.company == company_id
    total = 0
    for lot in await Lot.objects().where(condition):
        total += await write_off(
            lot_id=lot.id,
            max_minutes=None,
            kind=EntryKind.expiry,
            key=f"expiry:{lot.id}:{today.isoformat()}:{lot.remaining_minutes}",
            cause=Cause(type="system", note="Utløpt"),
        )
    return total


async def reverse(*, original_key: str, key: str, cause: Cause, today: datetime.date) -> int:
    """Give back, to the lots they came from, the minutes a debit took (a voided time entry).
    Minutes given back to a lot that has expired since are written off again at once, and so
    are those a refund of the lot's order has paid back since (up to the refunded share).
    Returns the minutes given back; a replay returns the same and moves nothing."""
    original = await LedgerOperation.objects().get(LedgerOperation.idempotency_key == original_key)
    if original is None:
        return 0

    async def act(operation: LedgerOperation) -> int:
        given, n = 0, 0
        entries = (
            await LedgerEntry.objects()
            .where(
                (LedgerEntry.operation == original.id) & (LedgerEntry.kind == EntryKind.debit.value)
            )
            .order_by(LedgerEntry.id)
        )
        for entry in entries:
            minutes = -entry.minutes
            lot = await Lot.objects().get(Lot.id == entry.lot)
            await Lot.update({Lot.remaining_minutes: Lot.remaining_minutes + minutes}).where(
                Lot.id == lot.id
            )
            n += 1
            await _entry(operation, lot, EntryKind.reversal, minutes, cause, n)
            given += minutes
            if lot.expires_on <= today:
                await _take(lot.id, minutes)
                n += 1
                expired = Cause(type="system", note="Utløpt før tilbakeføringen")
                await _entry(operation, lot, EntryKind.expiry, -minutes, expired, n)
                continue
            due = min(minutes, await refund_write_off_due(lot))
            if due:
                await _take(lot.id, due)
                n += 1
                refunded = Cause(
                    type="order", id=str(lot.order), note="Refundert før tilbakeføringen"
                )
                await _entry(operation, lot, EntryKind.refund_write_off, -due, refunded, n)
        return given

    operation, _ = await _once(key, original.company, EntryKind.reversal, 0, act)
    return operation.moved_minutes


def refund_share(lot_minutes: int, refunded_ore: int, total_ore: int) -> int:
    """The minutes of a lot that a refund of its order pays back: the refunded share of the
    lot, rounded up (SPEC §4: a refund of a top-up writes off the lot's unused minutes)."""
    return -(-lot_minutes * refunded_ore // total_ore) if total_ore else 0


async def refund_write_off_due(lot: Lot) -> int:
    """What the refunds of the lot's order still owe in written-off minutes."""
    if lot.order is None:
        return 0
    order = (
        await Order.select(Order.refunded_ore, Order.total_ore).where(Order.id == lot.order).first()
    )
    if not order or not order["refunded_ore"]:
        return 0
    written = await LedgerEntry.select(Sum(LedgerEntry.minutes).as_alias("total")).where(
        (LedgerEntry.lot == lot.id) & (LedgerEntry.kind == EntryKind.refund_write_off.value)
    )
    already = -int(written[0]["total"] or 0)
    return max(0, refund_share(lot.minutes, order["refunded_ore"], order["total_ore"]) - already)


MAX_ADJUSTMENT_MINUTES = 200 * 60


ADJUSTMENT_MINUTES_MESSAGE = N_("Skriv inn hele minutter, positivt eller negativt (høyst 12000).")


def _not_zero(minutes: int) -> int:
    if minutes == 0:
        raise FieldError(ADJUSTMENT_MINUTES_MESSAGE)
    return minutes


class Adjustment(msgspec.Struct):
    """An admin's adjustment form: whole minutes (negative takes minutes), a reason, and for
    added minutes the products they pay for. Its key makes a double submit one adjustment."""

    minutes: field(
        int,
        ge=-MAX_ADJUSTMENT_MINUTES,
        le=MAX_ADJUSTMENT_MINUTES,
        message=ADJUSTMENT_MINUTES_MESSAGE,
        check=_not_zero,
    )
    reason: line(500, required=N_("Skriv en begrunnelse."))
    products: list[field(str, max_length=40)] = msgspec.field(default_factory=list)
    idempotency_key: field(str, max_length=64, pattern=r"^[A-Za-z0-9_-]*$") = ""


def parse_adjustment(minutes: str, reason: str) -> tuple[int, str]:
    """The adjustment form's minutes and reason (Adjustment), every message at once."""
    form = convert({"minutes": minutes, "reason": reason}, Adjustment)
    return form.minutes, form.reason


async def adjust(
    *,
    company_id: int,
    minutes: int,
    reason: str,
    user_id: int,
    key: str,
    today: datetime.date,
    product_codes: Iterable[str] = (),
) -> int:
    """An admin's manual correction, with a reason (SPEC §5). A positive adjustment is a lot of
    its own, valid one year, paying for the products chosen (at least one, from the catalog); a
    negative one takes minutes like a debit (first to expire first), never below zero. Returns
    the minutes moved (negative when taken). It is recorded in the audit trail with its
    actor, minutes and reason, once (not on a replay of its key)."""
    cause = Cause(type="admin", note=reason, user_id=user_id)

    async def then(operation: LedgerOperation) -> None:
        await audit.record(
            user_id,
            AuditKind.minutes_adjusted,
            company=company_id,
            subject=f"ledger_operation:{operation.id}",
            after={
                "requested_minutes": minutes,
                # Signed as the form's minutes: a debit moves them out.
                "moved_minutes": operation.moved_minutes * (1 if minutes > 0 else -1),
                "products": list(dict.fromkeys(product_codes)) if minutes > 0 else [],
            },
            reason=reason,
        )

    if minutes > 0:
        codes = list(dict.fromkeys(product_codes))
        if not codes or not await catalog.all_known(codes):
            raise ValidationFailed({"products": N_("Velg hvilke produkter minuttene skal dekke.")})
        await credit_lot(
            company_id=company_id,
            minutes=minutes,
            expires_on=lot_expires_on(today),
            product_codes=codes,
            key=key,
            cause=cause,
            kind=EntryKind.adjustment,
            then=then,
        )
        return minutes
    result = await debit(
        company_id=company_id,
        minutes=-minutes,
        on_date=today,
        key=key,
        cause=cause,
        kind=EntryKind.adjustment,
        then=then,
    )
    return -result.debited_minutes


MAX_EXTENSION_YEARS = 2


def _expiry_date(value: str) -> str:
    try:
        datetime.date.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(N_("Skriv datoen som åååå-mm-dd.")) from None
    return value.strip()


class ExpiryExtension(msgspec.Struct):
    """An admin's extension of one lot's expiry: the new last usable day (ISO, what
    `<input type="date">` sends; "til og med", as pages show a lot) and a reason. Its key
    makes a double submit one extension."""

    lot: field(int, message=N_("Velg en pulje."))
    last_day: field(
        str,
        min_length=1,
        max_length=20,
        required=N_("Velg ny siste gyldige dag."),
        check=_expiry_date,
    )
    reason: line(500, required=N_("Skriv en begrunnelse."))
    idempotency_key: field(str, max_length=64, pattern=r"^[A-Za-z0-9_-]*$") = ""


def extension_error(current: datetime.date, new: datetime.date, today: datetime.date) -> str:
    """Why a lot's expiry cannot move from `current` to `new` today ("" when it can): only a
    lot not yet expired, to a later date, at most MAX_EXTENSION_YEARS after today."""
    if current <= today:
        return N_("Puljen er allerede utløpt og kan ikke forlenges.")
    if new <= current:
        return N_("Ny utløpsdato må være senere enn den nåværende.")
    if new > agreements.add_years(today, MAX_EXTENSION_YEARS):
        return N_("Ny utløpsdato kan være høyst to år fram i tid.")
    return ""


async def extend_expiry(
    *,
    company_id: int,
    lot_id: int,
    expires_on: datetime.date,
    reason: str,
    user_id: int,
    key: str,
    today: datetime.date,
) -> None:
    """An admin moves a not yet expired lot's expiry later, with a reason: never a silent edit.
    The lot's new date, a zero-minute `expiry_extension` entry naming the old and new date and
    the reason (the customer's statement shows it), and the audit entry are one transaction;
    a replay of `key` changes nothing. A lot of another company is NotFound."""
    lot = await Lot.objects().get((Lot.id == lot_id) & (Lot.company == company_id))
    if lot is None:
        raise NotFound("lot")

    async def act(operation: LedgerOperation) -> int:
        current = await Lot.objects().get(Lot.id == lot_id)
        old = current.expires_on
        problem = extension_error(old, expires_on, today)
        if problem:
            raise ValidationFailed({"last_day": problem})
        await Lot.update({Lot.expires_on: expires_on}).where(Lot.id == lot_id)
        # The note shows the last usable days ("til og med"), as the lot list does.
        note = (
            f"Utløpsdato forlenget fra {last_usable_day(old):%d.%m.%Y}"
            f" til {last_usable_day(expires_on):%d.%m.%Y}: {reason}"
        )
        cause = Cause(type="admin", note=note, user_id=user_id)
        await _entry(operation, current, EntryKind.expiry_extension, 0, cause)
        await audit.record(
            user_id,
            AuditKind.expiry_extended,
            company=company_id,
            subject=f"lot:{lot_id}",
            before={"expires_on": old.isoformat()},
            after={"expires_on": expires_on.isoformat()},
            reason=reason,
        )
        return 0

    await _once(key, company_id, EntryKind.expiry_extension, 0, act)


async def balance(company_id: int, today: datetime.date) -> int:
    """Unexpired minutes of the company. A read: it writes nothing (expired lots are written
    off by `expire_lots`, which the app runs every hour), and counts no expired lot."""
    rows = await Lot.select(Sum(Lot.remaining_minutes).as_alias("total")).where(
        (Lot.company == company_id) & usable_on(today)
    )
    return int(rows[0]["total"] or 0) if rows else 0


async def _usable_lots(company_id: int, on_date: datetime.date) -> list[Lot]:
    return (
        await Lot.objects()
        .where((Lot.company == company_id) & usable_on(on_date))
        .order_by(Lot.expires_on, Lot.id)
    )


async def open_lots_and_offer(
    company_id: int, today: datetime.date
) -> tuple[list[OpenLot], catalog.Offer]:
    """The company's lots with minutes left, the one that expires first first, each with the
    products it pays for in `lot.product_codes` (catalog codes), and the catalog's current
    offer: one statement (the top-up page shows both). Only unexpired lots; writes nothing."""
    engine = _engine()
    sql = (
        f"SELECT {open_lots_json(engine, '{}', date_parameter(engine))} AS lots,"
        f" {catalog.offer_columns(engine)}"
    )
    rows = await fetch(Lot, sql, company_id, today)
    return lots_from_json(from_json(rows[0]["lots"])), catalog.offer_from_row(rows[0])


def open_lots_json(engine, company: str, today: str) -> str:
    """The open lots as one column of a page's single query (services/overview.py): a JSON array
    of the lots usable on `today` (see `usable_on`), each with its `product_codes`. `company`
    and `today` are SQL expressions of the enclosing query. Read back with `lots_from_json`."""
    codes = json_values(
        engine,
        "SELECT lp.product_code, lp.id FROM lot_product AS lp WHERE lp.lot = l.id ORDER BY lp.id",
        "product_code",
        order_by="id",
    )
    select = (
        f"SELECT l.id, l.minutes, l.remaining_minutes, l.expires_on, {codes} AS product_codes"
        f" FROM time_lot AS l WHERE l.company = {company}"
        f" AND l.remaining_minutes > 0 AND l.expires_on > {today}"
        " ORDER BY l.expires_on, l.id"
    )
    return json_rows(
        engine,
        select,
        ("id", "minutes", "remaining_minutes", "expires_on", "product_codes"),
        order_by="expires_on, id",
        json_columns=("product_codes",),
    )


def has_time_account_sql(company: str, today: str) -> str:
    """Whether the company has a time account in force: a lot within its year (`expires_on`
    after `today`), used up or not (SPEC §2), so an account that ran dry is still one that
    runs low. An SQL expression for a page's single query, like `open_lots_json`."""
    return (
        f"EXISTS (SELECT 1 FROM time_lot AS l WHERE l.company = {company}"
        f" AND l.expires_on > {today})"
    )


@dataclass(frozen=True)
class OpenLot:
    """A lot as pages show it (a read, not a row to save)."""

    id: int
    minutes: int
    remaining_minutes: int
    expires_on: datetime.date
    product_codes: list[str]


def lots_from_json(rows: list[dict]) -> list[OpenLot]:
    return [
        OpenLot(
            id=row["id"],
            minutes=row["minutes"],
            remaining_minutes=row["remaining_minutes"],
            expires_on=datetime.date.fromisoformat(row["expires_on"]),
            product_codes=row["product_codes"],
        )
        for row in rows
    ]


async def entries_sum_by_lot(company_id: int | None = None) -> dict[int, int]:
    """Sum of the ledger per lot: must equal each lot's remaining minutes (for checks)."""
    query = LedgerEntry.select(LedgerEntry.lot, Sum(LedgerEntry.minutes).as_alias("total"))
    if company_id is not None:
        query = query.where(LedgerEntry.company == company_id)
    rows = await query.group_by(LedgerEntry.lot)
    return {row["lot"]: int(row["total"]) for row in rows}


async def entries_of_lot(lot_id: int) -> list[LedgerEntry]:
    return await LedgerEntry.objects().where(LedgerEntry.lot == lot_id).order_by(LedgerEntry.id)


async def recent_entries(company_id: int, limit: int = 20) -> list[dict]:
    """The company's latest movements of minutes, newest first (for staff)."""
    return (
        await LedgerEntry.select(
            *LedgerEntry.all_columns(),
            LedgerEntry.lot.expires_on.as_alias("lot_expires_on"),
            LedgerEntry.created_by.name.as_alias("created_by_name"),
        )
        .where(LedgerEntry.company == company_id)
        .order_by(LedgerEntry.id, ascending=False)
        .limit(limit)
    )
