"""Coverage of support time (SPEC §2): how each logged time entry is paid for.

Billed minutes are the actual minutes rounded up to the next 15, at least 15, per time entry.
Coverage is decided when the entry is logged, for the day of the support; first match wins:
1. the ticket's product is not covered by any active agreement of the company → hourly;
2. an active plan covers the product that day → plan (nothing debited, minutes recorded);
3. the time account has unexpired minutes for the product → debit the lots (first to expire
   first); if short, debit what is there and bill the rest hourly ("split");
4. otherwise → hourly.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass

import msgspec

from backend.db import is_unique_violation, write_transaction
from backend.i18n import N_
from backend.services import (
    activity,
    agreements,
    catalog,
    charges,
    clock,
    ledger,
    policy,
    support_days,
)
from backend.services.errors import NotFound, ValidationFailed
from backend.services.payments import Payments, run_after
from backend.services.validation import convert, convert_field, field, line
from backend.tables import (
    Agreement,
    AgreementProduct,
    Coverage,
    EntryKind,
    HourlyCharge,
    Lot,
    LotProduct,
    Ticket,
    TimeEntry,
    User,
)

STEP = 15
MAX_ACTUAL_MINUTES = 600


def billed_minutes(actual_minutes: int) -> int:
    """1→15, 15→15, 16→30, 44→45, 46→60, 600→600."""
    if actual_minutes <= 0:
        raise ValueError("actual minutes must be positive")
    return max(STEP, -(-actual_minutes // STEP) * STEP)


ActualMinutes = field(
    int, ge=1, le=MAX_ACTUAL_MINUTES, message=N_("Skriv inn hele minutter fra 1 til 600.")
)


def actual_minutes(value: str) -> int:
    """The log-time form's minutes: a whole number from 1 to 600."""
    return convert_field(value, ActualMinutes)


def performed_on_error(ticket: Ticket, day: datetime.date) -> str | None:
    """Support on a ticket is given between its opening (the Oslo date it was opened) and
    today: None when `day` lies there, else the form's message."""
    if day > clock.today():
        return N_("Datoen kan ikke være frem i tid.")
    if day < clock.oslo_date(ticket.created_at):
        return N_("Datoen kan ikke være før saken ble opprettet.")
    return None


def hourly_amount_ore(minutes: int, rate_ore: int) -> int:
    """minutes × hourly rate / 60 in øre, rounded half up."""
    return (minutes * rate_ore + 30) // 60


@dataclass(frozen=True)
class Decision:
    coverage: Coverage
    account_minutes: int = 0
    hourly_minutes: int = 0


async def covered_products(company_id: int, on_date: datetime.date) -> tuple[set[str], set[str]]:
    """Products the company's active agreements cover on `on_date`: (by a plan, by the time
    account). A time account is active while it has unexpired minutes left."""
    by_plan = await AgreementProduct.select(AgreementProduct.product_code).where(
        AgreementProduct.agreement.is_in(
            Agreement.select(Agreement.id).where(
                (Agreement.company == company_id) & agreements.in_force_on(on_date)
            )
        )
        & agreements.product_in_force_on(on_date)
    )
    by_account = await LotProduct.select(LotProduct.product_code).where(
        LotProduct.lot.is_in(
            Lot.select(Lot.id).where((Lot.company == company_id) & ledger.usable_on(on_date))
        )
    )
    return {r["product_code"] for r in by_plan}, {r["product_code"] for r in by_account}


def covered_products_sql(company: str, today: str) -> str:
    """`covered_products` (by a plan or by the time account) as an SQL set of product codes,
    for a page's single query (services/overview.py); `company` and `today` are SQL
    expressions of the enclosing query."""
    return (
        "(SELECT ap.product_code FROM agreement_product AS ap"
        " JOIN plan_agreement AS a ON a.id = ap.agreement"
        f" WHERE a.company = {company} AND a.starts_on <= {today} AND a.ends_on >= {today}"
        f" AND (a.cancelled_on IS NULL OR a.cancelled_on > {today})"
        f" AND (ap.covered_from IS NULL OR ap.covered_from <= {today})"
        f" AND (ap.cancelled_on IS NULL OR ap.cancelled_on > {today})"
        " UNION SELECT lp.product_code FROM lot_product AS lp"
        " JOIN time_lot AS l ON l.id = lp.lot"
        f" WHERE l.company = {company} AND l.remaining_minutes > 0 AND l.expires_on > {today})"
    )


async def billed_hourly_products(company_id: int, today: datetime.date) -> set[str]:
    """Codes of the catalog's products that no active agreement of the company covers today,
    so support on them is billed at the hourly rate (SPEC §2, coverage rule 1): neither an
    active plan nor an unexpired time-account lot with minutes left names them."""
    by_plan, by_account = await covered_products(company_id, today)
    products = (await catalog.current_offer()).products
    return {product.code for product in products} - by_plan - by_account


async def ticket_products(company_id: int, today: datetime.date) -> list[catalog.OfferedProduct]:
    """What the company's superuser can open a ticket about: the products on sale, and those
    no longer on sale that its agreements still cover today (in the catalog's order)."""
    by_plan, by_account = await covered_products(company_id, today)
    covered = by_plan | by_account
    return [p for p in await catalog.all_offered_products() if p.active or p.code in covered]


async def adjustment_products(company_id: int, on_date: datetime.date) -> list[str]:
    """What minutes an admin adds pay for unless chosen otherwise: every product the company's
    agreements cover, else every product in the catalog (in the catalog's order)."""
    by_plan, by_account = await covered_products(company_id, on_date)
    catalog_codes = [product.code for product in (await catalog.current_offer()).products]
    return [code for code in catalog_codes if code in by_plan | by_account] or catalog_codes


def first_match(product_code: str, by_plan: set[str], by_account: set[str]) -> Coverage:
    """The coverage rule's first match for a product (SPEC §2): a plan that covers it, else
    the time account if it has minutes for it (which may run short: split), else hourly."""
    if product_code in by_plan:
        return Coverage.plan
    if product_code in by_account:
        return Coverage.account
    return Coverage.hourly


async def expected_coverage(company_id: int, product_code: str, on_date: datetime.date) -> Coverage:
    """How support on `product_code` would be paid if given on `on_date`: what a ticket says
    before any time is logged, by the rule the debit applies."""
    return first_match(product_code, *await covered_products(company_id, on_date))


async def decide_and_debit(
    *, company_id: int, product_code: str, billed: int, on_date: datetime.date, key: str
) -> Decision:
    """Apply the coverage rule to `billed` minutes, debiting the time account when it pays."""
    first = first_match(product_code, *await covered_products(company_id, on_date))
    if first == Coverage.plan:
        return Decision(Coverage.plan)
    if first == Coverage.hourly:
        return Decision(Coverage.hourly, hourly_minutes=billed)
    result = await ledger.debit(
        company_id=company_id,
        minutes=billed,
        on_date=on_date,
        key=key,
        cause=ledger.Cause(type="time_entry", id=key),
        product_code=product_code,
    )
    if result.uncovered_minutes == 0:
        return Decision(Coverage.account, account_minutes=result.debited_minutes)
    if result.debited_minutes == 0:  # others took the last minutes meanwhile
        return Decision(Coverage.hourly, hourly_minutes=billed)
    return Decision(
        Coverage.split,
        account_minutes=result.debited_minutes,
        hourly_minutes=result.uncovered_minutes,
    )


def paid_entry_joins(operation: str) -> str:
    """SQL: LEFT JOINs of `time_entry` as `td` and `tr` that find the time entry a ledger
    operation (`operation`, an alias of ledger_operation) paid for or gave back: a debit is
    keyed "time:<the entry's key>" (record_time_entry), the reversal of a voided entry
    "void:<its id>" (void_time_entry). The entry's id is then coalesce(td.id, tr.id); both
    lookups use an index."""
    return (
        f" LEFT JOIN time_entry AS td ON td.company = {operation}.company"
        f" AND {operation}.kind = '{EntryKind.debit.value}'"
        f" AND {operation}.idempotency_key LIKE 'time:%'"
        f" AND td.idempotency_key = substr({operation}.idempotency_key, 6)"
        f" LEFT JOIN time_entry AS tr ON tr.company = {operation}.company"
        f" AND tr.id = CASE WHEN {operation}.kind = '{EntryKind.reversal.value}'"
        f" AND {operation}.idempotency_key LIKE 'void:%'"
        f" THEN CAST(substr({operation}.idempotency_key, 6) AS INTEGER) END"
    )


async def record_time_entry(
    *,
    ticket: Ticket,
    technician: User,
    actual: int,
    performed_on: datetime.date,
    channel: str,
    note: str,
    key: str | None,
) -> TimeEntry:
    """Record support time on a ticket and pay for it by the coverage rule. The same `key`
    (from the form: a double click, a retried request) gives the same single entry."""
    key = key or secrets.token_hex(16)
    if message := performed_on_error(ticket, performed_on):
        raise ValidationFailed({"performed_on": message})
    billed = billed_minutes(actual)
    try:
        async with write_transaction(TimeEntry._meta.db):
            earlier = await TimeEntry.objects().get(TimeEntry.idempotency_key == key)
            if earlier is not None:
                return earlier
            decision = await decide_and_debit(
                company_id=ticket.company,
                product_code=ticket.product_code,
                billed=billed,
                on_date=performed_on,
                key=f"time:{key}",
            )
            # The rate in force on the day of the support, stored with the entry and its
            # charge: a later price version never changes this amount.
            prices = await catalog.prices_on(performed_on)
            amount = hourly_amount_ore(
                decision.hourly_minutes, prices.hourly_rate_ore if prices else 0
            )
            entry = TimeEntry(
                ticket=ticket.id,
                company=ticket.company,
                technician=technician.id,
                performed_on=performed_on,
                channel=channel,
                note=note,
                actual_minutes=actual,
                billed_minutes=billed,
                coverage=decision.coverage.value,
                account_minutes=decision.account_minutes,
                hourly_minutes=decision.hourly_minutes,
                hourly_amount_ore=amount,
                idempotency_key=key,
            )
            await entry.save()
            await activity.record(ticket.id, entry.created_at)
            await support_days.count(entry)
            if decision.hourly_minutes:
                await HourlyCharge(
                    company=ticket.company,
                    time_entry=entry.id,
                    minutes=decision.hourly_minutes,
                    amount_ore=amount,
                ).save()
            return entry
    except Exception as error:
        if not is_unique_violation(error):
            raise
    # The same form sent twice at once: the first one's entry.
    return await TimeEntry.objects().get(TimeEntry.idempotency_key == key)


class VoidForm(msgspec.Struct):
    reason: line(500, required=N_("Skriv hvorfor timeføringen annulleres."))


async def void_time_entry(
    entry_id: int, staff: User, reason: str, payments: Payments | None = None
) -> TimeEntry:
    """Void a wrong time entry (with a reason): minutes go back to the lots they came from
    (written off again if a lot has expired since); an unpaid hourly charge is cancelled and
    leaves the order that would have paid it, a paid one is refunded (charges.release_charge).
    The entry itself stays, marked void; the ledger only grows. The calls to the payment
    provider (`payments`) run after the transaction."""
    policy.require(staff, "void_time")
    reason = convert({"reason": reason}, VoidForm).reason
    voided_at = clock.now()
    async with write_transaction(TimeEntry._meta.db):
        won = (
            await TimeEntry.update(
                {
                    TimeEntry.voided_at: voided_at,
                    TimeEntry.voided_by: staff.id,
                    TimeEntry.void_reason: reason,
                }
            )
            .where((TimeEntry.id == entry_id) & TimeEntry.voided_at.is_null())
            .returning(TimeEntry.id)
        )
        entry = await TimeEntry.objects().get(TimeEntry.id == entry_id)
        if entry is None:
            raise NotFound("no such time entry")
        if not won:
            return entry  # voided already
        await activity.record(entry.ticket, voided_at)
        await support_days.count(entry, -1)
        if entry.account_minutes:
            await ledger.reverse(
                original_key=f"time:{entry.idempotency_key}",
                key=f"void:{entry.id}",
                cause=ledger.Cause(
                    type="time_entry", id=str(entry.id), note=reason[:500], user_id=staff.id
                ),
                today=clock.today(),
            )
        after = await charges.release_charge(entry.id)
    await run_after(after, payments)
    return entry
