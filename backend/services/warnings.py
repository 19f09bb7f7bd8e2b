"""What a company is warned of (SPEC §7): little time left on the account, a lot or the plan
ending within 30 days, hourly support not paid yet. The dashboard shows them; a daily task
(`send_warnings`: the app's `run_daily`, and `portal send-warnings`) mails the same ones to the
company's superuser (issue 11): the low balance once per fall below the threshold, each lot and
each plan ending once."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from piccolo.engine.base import Engine

from backend.config import Seller
from backend.db import date_parameter, fetch, from_json, write_transaction, writing
from backend.i18n import N_
from backend.services import agreements, business, clock, companies, ledger, outbox, policy, users
from backend.services.overview import AccountSummary
from backend.services.validation import field
from backend.tables import Company, OutboxMail, Role, User

logger = logging.getLogger("portal.warnings")

LOW_BALANCE_MINUTES = 60  # the default threshold: below this, the account is running low
MAX_LOW_BALANCE_MINUTES = 200 * 60  # the largest top-up (200 hours)
ENDING_WITHIN_DAYS = 30


@dataclass(frozen=True)
class Warning:
    kind: str  # "low_balance" | "lot_ending" | "plan_ending" | "charges"
    minutes: int = 0  # low_balance: what is left; lot_ending: what the lot still holds
    last_day: datetime.date | None = None  # lot_ending, plan_ending: the last usable day
    amount_ore: int = 0  # charges: outstanding, ex. MVA
    # lot_ending: the lot; plan_ending: the last plan period bought (a renewal is a new one).
    row_id: int | None = None


def ends_soon(
    last_day: datetime.date, today: datetime.date, days: int = ENDING_WITHIN_DAYS
) -> bool:
    """`last_day` (the last usable day) is within the next `days` days, today included."""
    return today <= last_day < today + datetime.timedelta(days=days)


def runs_low(summary: AccountSummary) -> bool:
    """The company's time account (used up or not) is below the company's threshold (0:
    never)."""
    return (
        summary.has_time_account and summary.remaining_minutes < summary.company.low_balance_minutes
    )


def account_warnings(summary: AccountSummary, today: datetime.date) -> list[Warning]:
    found = []
    if runs_low(summary):
        found.append(Warning("low_balance", minutes=summary.remaining_minutes))
    for lot in summary.lots:
        last_day = ledger.last_usable_day(lot.expires_on)
        if ends_soon(last_day, today):
            found.append(
                Warning(
                    "lot_ending", minutes=lot.remaining_minutes, last_day=last_day, row_id=lot.id
                )
            )
    if summary.active_plan and ends_soon(summary.plan_ends_on, today):
        found.append(
            Warning("plan_ending", last_day=summary.plan_ends_on, row_id=summary.plans[-1].id)
        )
    if summary.outstanding_ore:
        found.append(Warning("charges", amount_ore=summary.outstanding_ore))
    return found


# --- the threshold, set by the superuser ---------------------------------------------------

THRESHOLD_MESSAGE = N_("Skriv inn et helt antall minutter fra 0 til 12000 (0 slår varselet av).")


class LowBalanceThreshold(msgspec.Struct):
    """The company page's form: below how many minutes the account is running low."""

    low_balance_minutes: field(int, ge=0, le=MAX_LOW_BALANCE_MINUTES, message=THRESHOLD_MESSAGE)


async def set_low_balance_threshold(user: User, form: LowBalanceThreshold) -> Company:
    """The superuser chooses when the company is warned of a low balance (SPEC §7)."""
    policy.require(user, "edit_company")
    async with writing(Company._meta.db):
        await Company.update({Company.low_balance_minutes: form.low_balance_minutes}).where(
            Company.id == user.company
        )
    return await companies.get_company(user.company)


# --- the daily mail ----------------------------------------------------------------------------

DAILY_AT = datetime.time(7, 0)  # Europe/Oslo
BATCH = 500  # companies read per statement
MAILED = ("low_balance", "lot_ending", "plan_ending")  # hourly charges are not mailed


@dataclass(frozen=True)
class _Company:
    """A company as the daily task reads it: its account, its superuser and its low-balance
    mail state."""

    summary: AccountSummary
    superuser_email: str
    language: str
    last_operation: int | None  # the company's latest ledger operation
    rearmed: bool  # no low-balance mail yet, or the balance was back up since the last one


async def send_warnings(today: datetime.date | None = None) -> int:
    """Queue every warning mail due `today` (default: the clock's) to each company's
    superuser, in their language; returns how many were queued. Safe to run any time and
    from several instances at once: each mail's key names its cause, so a second run queues
    nothing new.

    The low balance is mailed once per fall below the threshold: the mail remembers the
    company's latest ledger operation (`low_balance_mailed_at_operation`), and another one
    waits until an operation after it has left the balance at or above the threshold (a
    top-up, say) and the balance is low again. Its key names that operation, and the state
    moves by a conditional update, so two runs at once write it once. A lot and a plan ending
    within 30 days are mailed once each (the key names the lot, or the plan period)."""
    today = today or clock.today()
    seller = (await business.current()).seller
    queued = 0
    after = 0
    while batch := await _read_batch(after, today):
        after = batch[-1].summary.company.id
        due = {company.summary.company.id: _due_mails(company, today) for company in batch}
        keys = [key for mails in due.values() for key, _, _ in mails]
        sent_before = (
            {
                row["key"]
                for row in await OutboxMail.select(OutboxMail.key).where(OutboxMail.key.is_in(keys))
            }
            if keys
            else set()
        )
        for company in batch:
            mails = [m for m in due[company.summary.company.id] if m[0] not in sent_before]
            if mails:
                queued += await _queue(company, mails, seller)
    return queued


def _due_mails(company: _Company, today: datetime.date) -> list[tuple[str, str, Warning]]:
    """(key, template, warning) of each mail the company's warnings call for today."""
    company_id = company.summary.company.id
    mails = []
    for warning in account_warnings(company.summary, today):
        if warning.kind == "low_balance":
            if company.rearmed and company.last_operation is not None:
                key = f"low_balance:{company_id}:{company.last_operation}"
                mails.append((key, "low_balance", warning))
        elif warning.kind in MAILED:
            mails.append((f"{warning.kind}:{warning.row_id}", warning.kind, warning))
    return mails


async def _queue(
    company: _Company, mails: list[tuple[str, str, Warning]], seller: Seller | None = None
) -> int:
    summary = company.summary
    context: dict[str, Any] = {
        "company": summary.company,
        "threshold": summary.company.low_balance_minutes,
    }
    queued = 0
    async with write_transaction(Company._meta.db):
        for key, template, warning in mails:
            if template == "low_balance" and not await _mark_low_balance_mailed(company):
                continue  # another run mailed this fall just now
            queued += await outbox.queue(
                company.superuser_email,
                template,
                {**context, "warning": warning},
                key,
                language=company.language,
                seller=seller,
            )
    return queued


async def _mark_low_balance_mailed(company: _Company) -> bool:
    """Move the company's low-balance state from what this run read to its latest operation;
    False when another run moved it first."""
    mailed_at = Company.low_balance_mailed_at_operation
    read = company.summary.company.low_balance_mailed_at_operation
    unchanged = mailed_at.is_null() if read is None else mailed_at == read
    moved = (
        await Company.update({mailed_at: company.last_operation})
        .where((Company.id == company.summary.company.id) & unchanged)
        .returning(Company.id)
    )
    return bool(moved)


async def _read_batch(after: int, today: datetime.date) -> list[_Company]:
    """The next BATCH companies with a superuser, by id, with what their warnings need: one
    statement for all of them."""
    engine = Company._meta.db
    rows = await fetch(Company, _batch_sql(engine), today, after, BATCH)
    found = []
    for row in rows:
        lots = ledger.lots_from_json(from_json(row["lots"]))
        company = Company(
            id=row["id"],
            name=row["name"],
            low_balance_minutes=row["low_balance_minutes"],
            low_balance_mailed_at_operation=row["mailed_at"],
            _exists_in_db=True,
        )
        summary = AccountSummary(
            company=company,
            plans=agreements.plans_from_json(from_json(row["plans"])),
            remaining_minutes=sum(lot.remaining_minutes for lot in lots),
            lots=lots,
            orders=[],
            product_names={},
            outstanding_ore=0,
            has_time_account=bool(row["has_time_account"]),
        )
        found.append(
            _Company(
                summary=summary,
                superuser_email=row["email"],
                language=users.language_of(User(language=row["language"])),
                last_operation=row["last_operation"],
                rearmed=bool(row["rearmed"]),
            )
        )
    return found


@functools.cache
def _batch_sql(engine: Engine) -> str:
    # Operations of a company follow each other in (created_at, id): ledger._once.
    last_operation = (
        "(SELECT o.id FROM ledger_operation AS o WHERE o.company = c.id"
        " ORDER BY o.created_at DESC, o.id DESC LIMIT 1)"
    )
    back_up_since = (
        "EXISTS (SELECT 1 FROM ledger_operation AS m JOIN ledger_operation AS o"
        " ON o.company = m.company AND o.created_at >= m.created_at AND o.id > m.id"
        " WHERE m.id = c.low_balance_mailed_at_operation"
        " AND o.balance_after >= c.low_balance_minutes)"
    )
    return (
        "SELECT c.id, c.name, c.low_balance_minutes,"
        " c.low_balance_mailed_at_operation AS mailed_at, u.email, u.language,"
        f" {ledger.open_lots_json(engine, 'c.id', 'p.today')} AS lots,"
        f" {ledger.has_time_account_sql('c.id', 'p.today')} AS has_time_account,"
        f" {agreements.current_and_future_plans_json(engine, 'c.id', 'p.today')} AS plans,"
        f" {last_operation} AS last_operation,"
        f" (c.low_balance_mailed_at_operation IS NULL OR {back_up_since}) AS rearmed"
        " FROM company AS c"
        f" JOIN portal_user AS u ON u.company = c.id AND u.role = '{Role.superuser.value}'"
        f" CROSS JOIN (SELECT {date_parameter(engine)} AS today) AS p"
        " WHERE c.id > {} ORDER BY c.id LIMIT {}"
    )


def next_run(now: datetime.datetime) -> datetime.datetime:
    """The first DAILY_AT (Europe/Oslo) after `now`."""
    local = now.astimezone(clock.OSLO)
    day = local.date() if local.time() < DAILY_AT else local.date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(day, DAILY_AT, tzinfo=clock.OSLO)


async def run_daily() -> None:
    """The app's background task: the warnings at DAILY_AT every day, and at start when that
    time has passed today (an instance started later still sends the day's). Several
    instances may run it at once: the mails' keys make each one mail once."""
    while True:
        if clock.now().astimezone(clock.OSLO).time() >= DAILY_AT:
            try:
                queued = await send_warnings()
                logger.info("daily warnings: %s mails queued", queued)
            except Exception:
                logger.exception("daily warnings failed")
        now = clock.now()
        await asyncio.sleep((next_run(now) - now).total_seconds())
