"""The usage statement (SPEC §7): every movement of minutes and every piece of support time,
newest first, each with the account's balance after it.

A row is either a ledger operation that moved minutes (a purchase, support from the time
account, an expiry, a refund, an adjustment, a voided entry's minutes given back), with the
time entry it paid for if any, or a time entry that moved none (covered by the plan, or
billed by the hour). Rows are ordered by when they were recorded and paged by keyset (the
last row's source and id), so a page never repeats or skips a row when new ones arrive.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from string import Formatter

import msgspec
from piccolo.engine.base import Engine

from backend.db import date_parameter, fetch, from_json, json_rows
from backend.i18n import N_, gettext
from backend.services import catalog, clock, coverage, time_account, validation
from backend.services.clock import OSLO
from backend.services.tickets import CHANNEL_LABELS, ticket_number
from backend.tables import Coverage, EntryKind, LedgerEntry

PAGE_SIZE = 50
CSV_BATCH = 500
SUPPORT = "support"  # the kind of a row that is a time entry which moved no minutes

PERIODS = {
    "this_month": N_("Denne måneden"),
    "last_month": N_("Forrige måned"),
    "last_12_months": N_("Siste 12 måneder"),
    "custom": N_("Fra–til"),
}
PAID_BY_LABELS = {
    "plan": N_("Fri support"),
    "account": N_("Tidskonto"),
    "split": N_("Tidskonto og timepris"),
    "hourly": N_("Timepris"),
}


class StatementFilter(msgspec.Struct):
    """The statement's filters and where a page starts (a query string)."""

    period: validation.field(str, max_length=20) = "last_12_months"
    start: datetime.date | None = msgspec.field(name="from", default=None)
    end: datetime.date | None = msgspec.field(name="to", default=None)
    product: validation.field(str, max_length=40) = ""
    after: validation.field(str, max_length=30) = ""  # "L12" or "T7": the last row shown


class StatementRow(msgspec.Struct, frozen=True):
    source: str  # "L": a ledger operation; "T": a time entry that moved no minutes
    id: int
    at: datetime.datetime
    kind: str  # an EntryKind, or SUPPORT
    minutes: int  # moved, signed: + into the account, - out of it
    balance: int  # the account's minutes after this row
    note: str
    ticket_id: int | None
    ticket_subject: str | None
    technician: str | None
    product_code: str | None
    product_name: str | None  # the catalog's name (of a retired product too)
    channel: str | None
    actual_minutes: int | None
    billed_minutes: int | None
    coverage: str | None
    hourly_minutes: int
    hourly_amount_ore: int  # ex. MVA
    entry_voided: bool  # its time entry was voided since

    @property
    def voided(self) -> bool:
        """Support that was voided (its minutes come back on a row of their own)."""
        return self.entry_voided and self.kind != EntryKind.reversal.value

    @property
    def cursor(self) -> str:
        return f"{self.source}{self.id}"

    @property
    def day(self) -> datetime.date:
        return self.at.astimezone(OSLO).date()

    @property
    def paid_by(self) -> str | None:
        """How the support on this row was paid: plan, account, split or hourly."""
        if self.coverage is None or self.kind == EntryKind.reversal.value:
            return None
        if self.coverage == Coverage.account.value and self.hourly_minutes:
            return "split"
        return self.coverage

    @property
    def reason(self) -> str:
        return time_account.customer_reason(self.kind, self.note)


@dataclass(frozen=True)
class StatementPage:
    rows: list[StatementRow]
    next_after: str  # the cursor of the next page, "" on the last one


# A typed date outside these asks for everything there is (and stays clear of the calendar's
# ends, where a day's start in Oslo is not a time either engine can hold).
EARLIEST = datetime.date(2000, 1, 1)
LATEST = datetime.date(2199, 12, 31)


def period_bounds(
    chosen: StatementFilter, today: datetime.date
) -> tuple[datetime.date, datetime.date]:
    """The first and last day (Europe/Oslo, both included) the filter asks for: "from–to"
    with either end left open runs from the chart's first month or to today."""
    first_of_month = today.replace(day=1)
    if chosen.period == "this_month":
        return first_of_month, today
    if chosen.period == "last_month":
        last_day = first_of_month - datetime.timedelta(days=1)
        return last_day.replace(day=1), last_day
    year_ago = chart_months(today)[0]
    if chosen.period == "custom" and (chosen.start or chosen.end):
        first = min(max(chosen.start or year_ago, EARLIEST), LATEST)
        last = min(max(chosen.end or today, EARLIEST), LATEST)
        return min(first, last), max(first, last)
    return year_ago, today


def _instant(day: datetime.date) -> datetime.datetime:
    """The start of `day` in Europe/Oslo, in UTC (as both engines store times)."""
    return datetime.datetime.combine(day, datetime.time(), tzinfo=OSLO).astimezone(datetime.UTC)


def _cursor(after: str) -> tuple[str, int]:
    """("L" or "T", id) from "L12"; ("", 0), which matches no row, from anything else."""
    digits = after[1:]
    if after[:1] in ("L", "T") and digits.isascii() and digits.isdigit() and len(digits) <= 9:
        return after[0], int(digits)
    return "", 0


async def page_of(
    company_id: int, chosen: StatementFilter, *, limit: int = PAGE_SIZE
) -> StatementPage:
    """One page of the statement for the filter, from the row after `chosen.after`."""
    first, last = period_bounds(chosen, clock.today())
    source, row_id = _cursor(chosen.after)
    values = {
        "company": company_id,
        "start": _instant(first),
        "end": _instant(last + datetime.timedelta(days=1)),
        "product": chosen.product,
        "after": row_id,
    }
    sql, names = _page_sql(
        LedgerEntry._meta.db, limit + 1, by_product=bool(chosen.product), after=source
    )
    rows = await fetch(LedgerEntry, sql, *(values[name] for name in names))
    found = [msgspec.convert(dict(row), StatementRow, strict=False) for row in rows]
    more = len(found) > limit
    found = found[:limit]
    return StatementPage(rows=found, next_after=found[-1].cursor if more and found else "")


async def every_row(company_id: int, chosen: StatementFilter) -> AsyncIterator[list[StatementRow]]:
    """All the rows of the filter from its start, a page of CSV_BATCH at a time (for the CSV
    export): each page is a keyset read of its own, so a long export never holds more."""
    after = chosen.after
    while True:
        page = await page_of(
            company_id, msgspec.structs.replace(chosen, after=after), limit=CSV_BATCH
        )
        if page.rows:
            yield page.rows
        if not page.next_after:
            return
        after = page.next_after


def _after_cursor(at: str, row_id: str, branch: str, after: str) -> str:
    """SQL: the branch's row (`at`, `row_id`; its source is `branch`) comes after the cursor
    row (of source `after`) in the statement's order (at, source, id), newest first. The
    bound on `at` alone lets the index start at the cursor."""
    if not after:
        return "TRUE"
    bound = f"{at} <= (SELECT cur.at FROM cur)"
    if branch == after:
        return f"{bound} AND ({at} < (SELECT cur.at FROM cur) OR {row_id} < {{after}})"
    if branch < after:  # an "L" row at the cursor's time comes before a "T" cursor's
        return bound
    return f"{at} < (SELECT cur.at FROM cur)"


@functools.cache
def _page_sql(engine: Engine, limit: int, *, by_product: bool, after: str) -> tuple[str, list[str]]:
    """The page's SQL with named `{name}` placeholders turned into `{}`, and the names in the
    order of the placeholders. Each source's rows are read newest first by an index on
    (company, created_at, id), LIMIT rows each; the balance after a ledger operation is
    stored with it, and a time entry's is that of the last operation before it."""
    entry_columns = (
        "t.id AS ticket_id, t.subject AS ticket_subject, tech.name AS technician,"
        " t.product_code AS product_code, coalesce(cp.name, t.product_code) AS product_name,"
        " te.channel AS channel,"
        " te.actual_minutes AS actual_minutes, te.billed_minutes AS billed_minutes,"
        " te.coverage AS coverage, coalesce(te.hourly_minutes, 0) AS hourly_minutes,"
        " coalesce(te.hourly_amount_ore, 0) AS hourly_amount_ore,"
        " te.voided_at IS NOT NULL AS entry_voided"
    )
    entry_tables = (
        " LEFT JOIN ticket AS t ON t.id = te.ticket"
        " LEFT JOIN portal_user AS tech ON tech.id = te.technician"
        " LEFT JOIN catalog_product AS cp ON cp.code = t.product_code"
    )
    paid_for = coverage.paid_entry_joins("o")
    if after == "L":
        cursor = (
            "SELECT o.created_at AS at FROM ledger_operation AS o"
            " WHERE o.id = {after} AND o.company = {company}"
        )
    else:  # "T", or no cursor (then unused)
        cursor = (
            "SELECT te.created_at AS at FROM time_entry AS te"
            " WHERE te.id = {after} AND te.company = {company} AND te.account_minutes = 0"
        )
    # A product: its support, and the movements of lots that pay for it.
    lot_product = (
        "EXISTS (SELECT 1 FROM ledger_entry AS e JOIN lot_product AS lp ON lp.lot = e.lot"
        " WHERE e.operation = o.id AND lp.product_code = {product})"
    )
    operation_product = (
        f"{paid_for}"
        " LEFT JOIN time_entry AS fe ON fe.id = coalesce(td.id, tr.id)"
        " LEFT JOIN ticket AS ft ON ft.id = fe.ticket"
    )
    operations = (
        "SELECT 'L' AS source, o.id AS id, o.created_at AS at FROM ledger_operation AS o"
        f"{operation_product if by_product else ''}"
        " WHERE o.company = {company} AND o.created_at >= {start} AND o.created_at < {end}"
        " AND EXISTS (SELECT 1 FROM ledger_entry AS e WHERE e.operation = o.id)"
        f" AND {_after_cursor('o.created_at', 'o.id', 'L', after)}"
        + (
            " AND (ft.product_code = {product}"
            f" OR (coalesce(td.id, tr.id) IS NULL AND {lot_product}))"
            if by_product
            else ""
        )
        + f" ORDER BY o.created_at DESC, o.id DESC LIMIT {limit}"
    )
    support = (
        "SELECT 'T' AS source, te.id AS id, te.created_at AS at FROM time_entry AS te"
        f"{' JOIN ticket AS ft ON ft.id = te.ticket' if by_product else ''}"
        " WHERE te.company = {company} AND te.account_minutes = 0"
        " AND te.created_at >= {start} AND te.created_at < {end}"
        f" AND {_after_cursor('te.created_at', 'te.id', 'T', after)}"
        f"{' AND ft.product_code = {product}' if by_product else ''}"
        f" ORDER BY te.created_at DESC, te.id DESC LIMIT {limit}"
    )
    page = (
        f"SELECT * FROM (SELECT * FROM ({operations}) AS l"
        f" UNION ALL SELECT * FROM ({support}) AS s) AS u"
        f" ORDER BY u.at DESC, u.source DESC, u.id DESC LIMIT {limit}"
    )
    balance_before = (
        "(SELECT p.balance_after FROM ledger_operation AS p"
        " WHERE p.company = {company} AND p.created_at <= page.at"
        " ORDER BY p.created_at DESC, p.id DESC LIMIT 1)"
    )
    sql = (
        f"WITH cur AS ({cursor}), page AS ({page})"
        f" SELECT page.source, page.id, page.at, coalesce(o.kind, '{SUPPORT}') AS kind,"
        " coalesce((SELECT sum(e.minutes) FROM ledger_entry AS e"
        " WHERE page.source = 'L' AND e.operation = page.id), 0) AS minutes,"
        " coalesce((SELECT max(e.note) FROM ledger_entry AS e"
        " WHERE page.source = 'L' AND e.operation = page.id), '') AS note,"
        f" CASE WHEN page.source = 'L' THEN o.balance_after"
        f" ELSE coalesce({balance_before}, 0) END AS balance, "
        f"{entry_columns}"
        " FROM page LEFT JOIN ledger_operation AS o ON page.source = 'L' AND o.id = page.id"
        f"{paid_for}"
        " LEFT JOIN time_entry AS te ON te.id = CASE WHEN page.source = 'T' THEN page.id"
        " ELSE coalesce(td.id, tr.id) END"
        f"{entry_tables}"
        " ORDER BY page.at DESC, page.source DESC, page.id DESC"
    )
    names = [name for _, name, _, _ in Formatter().parse(sql) if name is not None]
    return sql.format(*(), **{name: "{}" for name in names}), names


def filter_values(chosen: StatementFilter) -> dict[str, str]:
    """The filter as the form and the links keep it (the query string's names)."""
    return {
        "period": chosen.period if chosen.period in PERIODS else "last_12_months",
        "from": chosen.start.isoformat() if chosen.start else "",
        "to": chosen.end.isoformat() if chosen.end else "",
        "product": chosen.product,
    }


# What a row is: a ledger entry's kind, or support that moved no minutes.
KIND_LABELS = {**time_account.ENTRY_LABELS, SUPPORT: N_("Support")}


# The CSV opens as it is in Excel set up for Norway: UTF-8 with a byte-order mark, ";" between
# fields, a decimal comma and dates as dd.mm.yyyy.
CSV_COLUMNS = (
    N_("Dato"),
    N_("Hva"),
    N_("Saksnummer"),
    N_("Emne"),
    N_("Tekniker"),
    N_("Produkt"),
    N_("Kanal"),
    N_("Faktisk tid (min)"),
    N_("Fakturert tid (min)"),
    N_("Betalt med"),
    N_("Minutter"),
    N_("Beløp eks. mva (kr)"),
    N_("Saldo (min)"),
    N_("Merknad"),
)


# A text cell that starts like a formula is one to Excel (=HYPERLINK(…) in a ticket's subject
# would run when the file is opened): such text is kept as text with a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def csv_text(value: str | None) -> str:
    text = value or ""
    return "'" + text if text.lstrip().startswith(_FORMULA_STARTS) else text


def csv_fields(row: StatementRow) -> list[str]:
    return [
        f"{row.day:%d.%m.%Y}",
        gettext(KIND_LABELS.get(row.kind, row.kind))
        + (f" ({gettext('annullert')})" if row.voided else ""),
        ticket_number(row.ticket_id) if row.ticket_id else "",
        csv_text(row.ticket_subject),
        csv_text(row.technician),
        csv_text(row.product_name),
        gettext(CHANNEL_LABELS.get(row.channel, row.channel)) if row.channel else "",
        "" if row.actual_minutes is None else str(row.actual_minutes),
        "" if row.billed_minutes is None else str(row.billed_minutes),
        gettext(PAID_BY_LABELS[row.paid_by]) if row.paid_by else "",
        str(row.minutes),
        f"{row.hourly_amount_ore // 100},{row.hourly_amount_ore % 100:02d}"
        if row.hourly_amount_ore
        else "",
        str(row.balance),
        csv_text(row.reason),
    ]


async def csv_lines(company_id: int, chosen: StatementFilter) -> AsyncIterator[str]:
    """The statement's rows for the filter, every page of them, as CSV: streamed, one chunk
    per page of CSV_BATCH rows, so a long export holds one page in memory at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")

    def line(fields: list[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(fields)
        return buffer.getvalue()

    yield "\ufeff" + line([gettext(column) for column in CSV_COLUMNS])
    async for rows in every_row(company_id, msgspec.structs.replace(chosen, after="")):
        yield "".join(line(csv_fields(row)) for row in rows)


# --- the monthly chart -------------------------------------------------------------------

CHART_MONTHS = 12


class UsageDay(msgspec.Struct, frozen=True):
    day: datetime.date
    plan: int
    account: int
    hourly: int


@dataclass(frozen=True)
class UsageMonth:
    first_day: datetime.date
    plan: int  # minutes of support covered by the plan
    account: int  # minutes taken from the time account
    hourly: int  # minutes billed at the hourly rate

    @property
    def total(self) -> int:
        return self.plan + self.account + self.hourly


@dataclass(frozen=True)
class Overview:
    """What the statement page shows besides its rows: the products to filter by and the
    support of each of the last CHART_MONTHS months (this one included), oldest first."""

    products: list[catalog.OfferedProduct]
    months: list[UsageMonth]

    @property
    def busiest(self) -> int:
        return max((month.total for month in self.months), default=0)


def chart_months(today: datetime.date) -> list[datetime.date]:
    """The first days of the last CHART_MONTHS months, this one last."""
    firsts = [today.replace(day=1)]
    while len(firsts) < CHART_MONTHS:
        firsts.append((firsts[-1] - datetime.timedelta(days=1)).replace(day=1))
    return firsts[::-1]


async def overview(company_id: int, today: datetime.date) -> Overview:
    """The products and the monthly support, in one statement: the support days
    (services/support_days.py) of the months shown."""
    months = chart_months(today)
    engine = LedgerEntry._meta.db
    [row] = await fetch(LedgerEntry, _overview_sql(engine), company_id, months[0])
    offer = catalog.offer_from_row(row)
    totals = {first: [0, 0, 0] for first in months}
    for usage in from_json(row["days"], list[UsageDay]):
        month = totals[usage.day.replace(day=1)]
        month[0] += usage.plan
        month[1] += usage.account
        month[2] += usage.hourly
    return Overview(
        products=offer.products,
        months=[UsageMonth(first, *totals[first]) for first in months],
    )


@functools.cache
def _overview_sql(engine: Engine) -> str:
    days = json_rows(
        engine,
        "SELECT sd.day, sd.plan_minutes AS plan, sd.account_minutes AS account,"
        " sd.hourly_minutes AS hourly FROM support_day AS sd WHERE sd.company = {}"
        f" AND sd.day >= {date_parameter(engine)} ORDER BY sd.day",
        UsageDay.__struct_fields__,
        order_by="day",
    )
    return f"SELECT {catalog.offer_columns(engine)}, {days} AS days"
