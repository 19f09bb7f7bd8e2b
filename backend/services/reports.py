"""The back office's reports (issue 12): what the business sold, used, let expire and earned
per month, what is owed, and who to call — lots and plans about to end, accounts running low,
companies paying by the hour without an agreement.

Every figure is a sum over the rows that hold it: minutes over the ledger (per ledger kind,
as the ledger names them), revenue over paid orders (ex. MVA), open hourly charges over the
charges still outstanding. The monthly figures are one statement for any number of months;
the follow-up list is one statement for every company, read with the dashboard's own rules
(services/warnings.py).
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from backend.db import date_parameter, fetch, from_json
from backend.i18n import N_, gettext
from backend.services import agreements, charges, ledger, validation, warnings
from backend.services.clock import OSLO
from backend.services.overview import AccountSummary
from backend.services.statement import csv_text
from backend.tables import ChargeStatus, Company, EntryKind, OrderKind, OrderStatus

DEFAULT_MONTHS = 12
MAX_MONTHS = 36
FOLLOW_UP_DAYS = (30, 60)
# "Hourly charges but no agreement": hourly support within this many days.
HOURLY_WITHIN_DAYS = 365

# The ledger's kinds, in the order the report shows them.
KINDS = tuple(kind.value for kind in EntryKind)
# The three alternatives (SPEC §2) and the orders that pay for each.
ALTERNATIVES = {
    "plan": OrderKind.plan.value,
    "account": OrderKind.topup.value,
    "hourly": OrderKind.charges.value,
}
ALTERNATIVE_LABELS = {
    "plan": N_("Fri support"),
    "account": N_("Tidskonto"),
    "hourly": N_("Timepris"),
}

MONTH_MESSAGE = N_("Skriv måneden som ÅÅÅÅ-MM, for eksempel 2026-01.")
RANGE_MESSAGE = N_("Velg høyst 36 måneder.")
ORDER_MESSAGE = N_("Fra-måneden kan ikke være etter til-måneden.")
_MONTH = re.compile(r"\d{4}-\d{2}")


class ReportQuery(msgspec.Struct):
    """The report page's query string: the first and last month shown (YYYY-MM)."""

    start: validation.field(str, max_length=100) = msgspec.field(name="from", default="")
    end: validation.field(str, max_length=100) = msgspec.field(name="to", default="")


def _month(text: str) -> datetime.date | None:
    text = text.strip()
    if not _MONTH.fullmatch(text):
        return None
    year, month = int(text[:4]), int(text[5:])
    if not (2000 <= year <= 2199 and 1 <= month <= 12):
        return None
    return datetime.date(year, month, 1)


def _next_month(first: datetime.date) -> datetime.date:
    return (first + datetime.timedelta(days=32)).replace(day=1)


def _months_back(last: datetime.date, count: int) -> list[datetime.date]:
    firsts = [last]
    while len(firsts) < count:
        firsts.append((firsts[-1] - datetime.timedelta(days=1)).replace(day=1))
    return firsts[::-1]


@dataclass(frozen=True)
class Range:
    months: list[datetime.date]  # first days, oldest first
    errors: dict[str, str]  # field → message (untranslated); the default range is shown then


def months_of(query: ReportQuery, today: datetime.date) -> Range:
    """The months the query asks for; either end left empty: the last DEFAULT_MONTHS up to
    this month, or DEFAULT_MONTHS from the first. A bad value shows the default with a
    message, never an error page."""
    default = _months_back(today.replace(day=1), DEFAULT_MONTHS)
    errors = {}
    first = _month(query.start) if query.start.strip() else None
    last = _month(query.end) if query.end.strip() else None
    if query.start.strip() and first is None:
        errors["from"] = MONTH_MESSAGE
    if query.end.strip() and last is None:
        errors["to"] = MONTH_MESSAGE
    if errors:
        return Range(default, errors)
    if first is None and last is None:
        return Range(default, {})
    if first is None:
        return Range(_months_back(last, DEFAULT_MONTHS), {})
    if last is None:
        months = [first]
        while len(months) < DEFAULT_MONTHS:
            months.append(_next_month(months[-1]))
        return Range(months, {})
    if first > last:
        return Range(default, {"from": ORDER_MESSAGE})
    months = [first]
    while months[-1] < last:
        months.append(_next_month(months[-1]))
        if len(months) > MAX_MONTHS:
            return Range(default, {"to": RANGE_MESSAGE})
    return Range(months, {})


# --- the monthly figures -------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    first_day: datetime.date
    minutes: dict[str, int]  # ledger kind → the sum of its entries (signed, as stored)
    revenue: dict[str, int]  # alternative → paid orders' amounts, ex. MVA
    open_ore: int  # hourly charges of the month still outstanding, ex. MVA

    @property
    def sold(self) -> int:
        return self.minutes[EntryKind.credit.value]

    @property
    def imported(self) -> int:
        """Minutes bought before the portal, onboarded (services/onboarding.py): not sold here."""
        return self.minutes[EntryKind.import_.value]

    @property
    def used(self) -> int:
        """Support taken from the time account (a debit is stored negative)."""
        return -self.minutes[EntryKind.debit.value]

    @property
    def expired(self) -> int:
        return -self.minutes[EntryKind.expiry.value]

    @property
    def written_off(self) -> int:
        return -self.minutes[EntryKind.refund_write_off.value]

    # The charts' parts, by name.
    @property
    def plan(self) -> int:
        return self.revenue["plan"]

    @property
    def account(self) -> int:
        return self.revenue["account"]

    @property
    def hourly(self) -> int:
        return self.revenue["hourly"]

    @property
    def revenue_total(self) -> int:
        return sum(self.revenue.values())


def _instant(day: datetime.date) -> datetime.datetime:
    """The start of `day` in Europe/Oslo, in UTC (as both engines store times)."""
    return datetime.datetime.combine(day, datetime.time(), tzinfo=OSLO).astimezone(datetime.UTC)


def _month_bounds(months: list[datetime.date]) -> list[datetime.datetime]:
    """Each month's start and the next one's, as the statement's parameters."""
    return [
        instant for first in months for instant in (_instant(first), _instant(_next_month(first)))
    ]


async def monthly(months: list[datetime.date]) -> list[Month]:
    """The figures of each month, in one statement however many months and companies."""
    rows = await fetch(Company, _monthly_sql(Company._meta.db, len(months)), *_month_bounds(months))
    minutes = [dict.fromkeys(KINDS, 0) for _ in months]
    revenue = [dict.fromkeys(ALTERNATIVES, 0) for _ in months]
    open_ore = [0 for _ in months]
    by_order_kind = {kind: name for name, kind in ALTERNATIVES.items()}
    # Products added to a plan are plan revenue (services/product_additions.py).
    by_order_kind[OrderKind.plan_addition.value] = "plan"
    for row in rows:
        index, value = int(row["idx"]), int(row["value"] or 0)
        if row["series"] == "ledger" and row["name"] in minutes[index]:
            minutes[index][row["name"]] += value
        elif row["series"] == "revenue" and row["name"] in by_order_kind:
            revenue[index][by_order_kind[row["name"]]] += value
        elif row["series"] == "open":
            open_ore[index] += value
    return [Month(first, minutes[i], revenue[i], open_ore[i]) for i, first in enumerate(months)]


@functools.cache
def _monthly_sql(engine: Engine, count: int) -> str:
    instant = "CAST({} AS TIMESTAMPTZ)" if isinstance(engine, PostgresEngine) else "{}"
    values = ", ".join(f"({index}, {instant}, {instant})" for index in range(count))
    in_month = "{at} >= m.start AND {at} < m.stop"
    return (
        f"WITH m(idx, start, stop) AS (VALUES {values})"
        " SELECT m.idx AS idx, 'ledger' AS series, e.kind AS name, sum(e.minutes) AS value"
        f" FROM m JOIN ledger_entry AS e ON {in_month.format(at='e.created_at')}"
        " GROUP BY m.idx, e.kind"
        " UNION ALL"
        " SELECT m.idx, 'revenue', o.kind, sum(o.amount_ore)"
        f" FROM m JOIN payment_order AS o ON {in_month.format(at='o.paid_at')}"
        f" WHERE o.status = '{OrderStatus.paid.value}' GROUP BY m.idx, o.kind"
        " UNION ALL"
        " SELECT m.idx, 'open', 'hourly', sum(h.amount_ore)"
        f" FROM m JOIN hourly_charge AS h ON {in_month.format(at='h.created_at')}"
        f" WHERE h.status = '{ChargeStatus.outstanding.value}' GROUP BY m.idx"
    )


# --- the follow-up list --------------------------------------------------------------------


@dataclass(frozen=True)
class Ending:
    company_id: int
    company_name: str
    what: str  # "lot" | "plan"
    last_day: datetime.date
    minutes: int  # a lot: what it still holds; a plan: 0
    within: int  # the first of FOLLOW_UP_DAYS it falls in


@dataclass(frozen=True)
class CompanyLine:
    company_id: int
    company_name: str
    minutes: int = 0  # low balance: what is left
    threshold: int = 0
    amount_ore: int = 0  # hourly: charged within HOURLY_WITHIN_DAYS, ex. MVA


@dataclass(frozen=True)
class FollowUp:
    ending: list[Ending]  # soonest first
    low_balance: list[CompanyLine]
    hourly_without_agreement: list[CompanyLine]
    open_ore: int  # every hourly charge still outstanding, ex. MVA
    days: tuple[int, ...] = field(default=FOLLOW_UP_DAYS)

    def ending_within(self, days: int) -> list[Ending]:
        return [row for row in self.ending if row.within <= days]


async def follow_up(today: datetime.date) -> FollowUp:
    """Who to call, in one statement for every company, by the dashboard's rules."""
    since = _instant(today - datetime.timedelta(days=HOURLY_WITHIN_DAYS))
    rows = await fetch(Company, _follow_up_sql(Company._meta.db), today, since)
    ending, low, hourly = [], [], []
    open_ore = 0
    horizon = max(FOLLOW_UP_DAYS)
    for row in rows:
        lots = ledger.lots_from_json(from_json(row["lots"]))
        company = Company(
            id=row["id"],
            name=row["name"],
            low_balance_minutes=row["low_balance_minutes"],
            _exists_in_db=True,
        )
        summary = AccountSummary(
            company=company,
            plans=agreements.plans_from_json(from_json(row["plans"])),
            remaining_minutes=sum(lot.remaining_minutes for lot in lots),
            lots=lots,
            orders=[],
            product_names={},
            outstanding_ore=int(row["outstanding_ore"]),
            has_time_account=bool(row["has_time_account"]),
        )
        open_ore += summary.outstanding_ore
        for lot in lots:
            last_day = ledger.last_usable_day(lot.expires_on)
            if warnings.ends_soon(last_day, today, horizon):
                ending.append(
                    Ending(
                        company.id,
                        company.name,
                        "lot",
                        last_day,
                        lot.remaining_minutes,
                        _within(last_day, today),
                    )
                )
        if summary.active_plan and warnings.ends_soon(summary.plan_ends_on, today, horizon):
            ending.append(
                Ending(
                    company.id,
                    company.name,
                    "plan",
                    summary.plan_ends_on,
                    0,
                    _within(summary.plan_ends_on, today),
                )
            )
        if warnings.runs_low(summary):
            low.append(
                CompanyLine(
                    company.id,
                    company.name,
                    minutes=summary.remaining_minutes,
                    threshold=company.low_balance_minutes,
                )
            )
        charged = int(row["hourly_ore"])
        if row["has_hourly"] and not summary.active_plan and not summary.has_time_account:
            hourly.append(CompanyLine(company.id, company.name, amount_ore=charged))
    ending.sort(key=lambda row: (row.last_day, row.company_name, row.what))
    return FollowUp(ending, low, hourly, open_ore)


def _within(last_day: datetime.date, today: datetime.date) -> int:
    return next(days for days in FOLLOW_UP_DAYS if warnings.ends_soon(last_day, today, days))


@functools.cache
def _follow_up_sql(engine: Engine) -> str:
    charged = (
        f"h.company = c.id AND h.status <> '{ChargeStatus.cancelled.value}'"
        " AND h.created_at >= p.since"
    )
    instant = "CAST({} AS TIMESTAMPTZ)" if isinstance(engine, PostgresEngine) else "{}"
    return (
        "SELECT c.id, c.name, c.low_balance_minutes,"
        f" {ledger.open_lots_json(engine, 'c.id', 'p.today')} AS lots,"
        f" {ledger.has_time_account_sql('c.id', 'p.today')} AS has_time_account,"
        f" {agreements.current_and_future_plans_json(engine, 'c.id', 'p.today')} AS plans,"
        f" {charges.outstanding_ore_sql('c.id')} AS outstanding_ore,"
        f" EXISTS (SELECT 1 FROM hourly_charge AS h WHERE {charged}) AS has_hourly,"
        " (SELECT coalesce(sum(h.amount_ore), 0) FROM hourly_charge AS h"
        f" WHERE {charged}) AS hourly_ore"
        f" FROM company AS c CROSS JOIN (SELECT {date_parameter(engine)} AS today,"
        f" {instant} AS since) AS p"
        " ORDER BY c.name, c.id"
    )


# --- the CSV files -------------------------------------------------------------------------


def _lines(rows: Iterable[list[str]]) -> AsyncIterator[str]:
    """Rows as the statement's CSV (UTF-8 with a BOM, ";", a decimal comma), streamed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")

    async def lines() -> AsyncIterator[str]:
        first = True
        for fields in rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(fields)
            yield ("\ufeff" if first else "") + buffer.getvalue()
            first = False

    return lines()


def _kroner(ore: int) -> str:
    sign = "-" if ore < 0 else ""
    return f"{sign}{abs(ore) // 100},{abs(ore) % 100:02d}"


MONTH_COLUMNS = (
    N_("Måned"),
    N_("Solgt (min)"),
    N_("Overført (min)"),
    N_("Brukt (min)"),
    N_("Utløpt (min)"),
    N_("Refundert, avskrevet (min)"),
    N_("Justering (min)"),
    N_("Tilbakeført (min)"),
    N_("Fri support eks. mva (kr)"),
    N_("Tidskonto eks. mva (kr)"),
    N_("Timepris eks. mva (kr)"),
    N_("Åpne timepriskrav eks. mva (kr)"),
)


def month_fields(month: Month) -> list[str]:
    return [
        f"{month.first_day:%Y-%m}",
        str(month.sold),
        str(month.imported),
        str(month.used),
        str(month.expired),
        str(month.written_off),
        str(month.minutes[EntryKind.adjustment.value]),
        str(month.minutes[EntryKind.reversal.value]),
        _kroner(month.revenue["plan"]),
        _kroner(month.revenue["account"]),
        _kroner(month.revenue["hourly"]),
        _kroner(month.open_ore),
    ]


def monthly_csv(months: list[Month]) -> AsyncIterator[str]:
    header = [gettext(column) for column in MONTH_COLUMNS]
    return _lines([header, *(month_fields(month) for month in months)])


FOLLOW_UP_COLUMNS = (
    N_("Liste"),
    N_("Firma"),
    N_("Firma-ID"),
    N_("Hva"),
    N_("Siste dag"),
    N_("Minutter"),
    N_("Beløp eks. mva (kr)"),
)
WHAT_LABELS = {
    "lot": N_("Tidskonto (kjøp)"),
    "plan": N_("Fri support-avtale"),
}
LIST_LABELS = {
    "ending": N_("Slutter innen {days} dager"),
    "low_balance": N_("Under varslingsgrensen"),
    "hourly": N_("Timepris uten avtale"),
}


def follow_up_rows(found: FollowUp) -> list[list[str]]:
    rows = []
    for row in found.ending:
        rows.append(
            [
                gettext(LIST_LABELS["ending"]).format(days=row.within),
                csv_text(row.company_name),
                str(row.company_id),
                gettext(WHAT_LABELS[row.what]),
                f"{row.last_day:%d.%m.%Y}",
                str(row.minutes) if row.what == "lot" else "",
                "",
            ]
        )
    for row in found.low_balance:
        rows.append(
            [
                gettext(LIST_LABELS["low_balance"]),
                csv_text(row.company_name),
                str(row.company_id),
                "",
                "",
                str(row.minutes),
                "",
            ]
        )
    for row in found.hourly_without_agreement:
        rows.append(
            [
                gettext(LIST_LABELS["hourly"]),
                csv_text(row.company_name),
                str(row.company_id),
                "",
                "",
                "",
                _kroner(row.amount_ore),
            ]
        )
    return rows


def follow_up_csv(found: FollowUp) -> AsyncIterator[str]:
    header = [gettext(column) for column in FOLLOW_UP_COLUMNS]
    return _lines([header, *follow_up_rows(found)])
