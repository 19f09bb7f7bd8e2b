"""What the customer API (controllers/api.py) answers: its query strings and its response
shapes (msgspec Structs, which the OpenAPI schema at /schema describes), built from the reads
the portal's own pages use. Amounts are integer øre; times are UTC, days Europe/Oslo.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

import msgspec

from backend.i18n import N_
from backend.services import (
    advisories,
    catalog,
    clock,
    overview,
    policy,
    statement,
    tickets,
    validation,
)
from backend.services.errors import NotFound, ValidationFailed
from backend.services.money import mva_ore
from backend.tables import TicketStatus, User

Period = Literal["this_month", "last_month", "last_12_months", "custom"]
DATE_INVALID = N_("Skriv datoen som ÅÅÅÅ-MM-DD, for eksempel 2026-01-31.")
CURSOR_INVALID = N_("Ugyldig cursor: bruk verdien av «next» fra forrige svar.")


def _described(base: object, description: str, **bounds: object) -> object:
    return Annotated[base, msgspec.Meta(description=description, **bounds)]


class NoQuery(msgspec.Struct):
    """The query string of a route that takes no parameters: any one is a mistake (400)."""


# --- the account -------------------------------------------------------------------------


class CompanyOut(msgspec.Struct):
    id: int
    name: str
    org_number: str


class PlanOut(msgspec.Struct):
    active: bool
    ends_on: datetime.date | None  # the last day of the last plan period bought
    products: list[str]  # product codes the current plan covers


class LotOut(msgspec.Struct):
    id: int
    minutes: int
    remaining_minutes: int
    expires_on: datetime.date  # usable until the day before
    products: list[str]


class OrderOut(msgspec.Struct):
    id: int
    kind: str
    status: str
    amount_ore: int  # ex. MVA
    total_ore: int  # incl. MVA


class Account(msgspec.Struct):
    company: CompanyOut
    plan: PlanOut
    remaining_minutes: int  # in the time account, unexpired lots only
    lots: list[LotOut]
    # Support billed at the hourly rate and not paid yet.
    outstanding_charges_ore: int  # ex. MVA
    outstanding_charges_incl_mva_ore: int
    orders: list[OrderOut]  # the latest, newest first


async def account(user: User) -> Account:
    summary = await overview.account_summary(user.company)
    company = summary.company
    return Account(
        company=CompanyOut(id=company.id, name=company.name, org_number=company.org_number),
        plan=PlanOut(
            active=summary.active_plan is not None,
            ends_on=summary.plan_ends_on,
            products=summary.plan_products,
        ),
        remaining_minutes=summary.remaining_minutes,
        lots=[
            LotOut(
                id=lot.id,
                minutes=lot.minutes,
                remaining_minutes=lot.remaining_minutes,
                expires_on=lot.expires_on,
                products=lot.product_codes,
            )
            for lot in summary.lots
        ],
        outstanding_charges_ore=summary.outstanding_ore,
        outstanding_charges_incl_mva_ore=summary.outstanding_ore + mva_ore(summary.outstanding_ore),
        orders=[
            OrderOut(
                id=o.id,
                kind=o.kind,
                status=o.status,
                amount_ore=o.amount_ore,
                total_ore=o.total_ore,
            )
            for o in summary.orders
        ],
    )


# --- tickets -----------------------------------------------------------------------------


class TicketsQuery(msgspec.Struct):
    q: _described(
        str,
        "Search by number (SUP-000123), subject or the text of its messages",
        max_length=tickets.SEARCH_MAX,
    ) = ""
    status: validation.field(
        TicketStatus | None, message=N_("Ukjent status."), description="Only this status"
    ) = None
    product: _described(str, "Only this product code", max_length=40) = ""
    cursor: validation.field(
        str,
        message=CURSOR_INVALID,
        max_length=40,
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Where the page starts: `next` of the previous page",
    ) = ""


class TicketOut(msgspec.Struct):
    number: str  # as the portal shows it: SUP-000123
    id: int
    subject: str
    status: str
    product_code: str
    product_name: str
    created_at: datetime.datetime
    last_activity_at: datetime.datetime
    billed_minutes: int  # of its time entries that are not voided
    plan_minutes: int  # of those, covered by the plan
    account_minutes: int  # taken from the time account
    hourly_minutes: int  # billed at the hourly rate
    cost_ore: int  # its hourly charges ex. MVA, unless cancelled or refunded
    outstanding_ore: int  # of those, not paid yet


class TicketList(msgspec.Struct):
    tickets: list[TicketOut]  # the latest activity first
    next: str | None  # the `cursor` of the next page; null on the last one


async def ticket_list(user: User, query: TicketsQuery) -> TicketList:
    """A page of the company's ticket history (services/tickets.history), the same rows and
    order as /portal/tickets."""
    found = await tickets.history(
        user.company,
        tickets.HistoryFilter(
            q=query.q,
            status=query.status.value if query.status else "",
            product=query.product,
            after=query.cursor,
        ),
    )
    if found.bad_cursor:
        raise ValidationFailed({"cursor": CURSOR_INVALID})
    return TicketList(
        tickets=[
            TicketOut(number=tickets.ticket_number(row.id), **msgspec.structs.asdict(row))
            for row in found.rows
        ],
        next=found.next_after or None,
    )


class MessageOut(msgspec.Struct):
    id: int
    author_name: str
    from_support: bool
    body: str
    created_at: datetime.datetime


class TimeEntryOut(msgspec.Struct):
    id: int
    performed_on: datetime.date
    technician_name: str
    channel: str
    actual_minutes: int
    billed_minutes: int  # rounded up to 15, at least 15
    coverage: str  # plan, account or hourly
    account_minutes: int  # taken from the time account
    hourly_minutes: int  # billed at the hourly rate
    hourly_amount_ore: int  # ex. MVA
    voided: bool


class TicketDetail(msgspec.Struct):
    number: str
    id: int
    subject: str
    description: str
    status: str
    product_code: str
    product_name: str
    channel: str
    created_at: datetime.datetime
    messages: list[MessageOut]  # the thread, oldest first; support's internal notes left out
    time_entries: list[TimeEntryOut]  # in the order worked


def ticket_id(number: str) -> int:
    """The id in "SUP-000123", "SUP123" or "123"; NotFound for what names no ticket."""
    match = tickets.NUMBER.match(number)
    ticket_id = int(match.group(1)) if match else 0
    if not 0 < ticket_id <= validation.MAX_ID:
        raise NotFound("not a ticket number")
    return ticket_id


async def ticket_detail(user: User, number: str) -> TicketDetail:
    ticket = await tickets.get_ticket(user, ticket_id(number))
    messages = await tickets.thread(ticket, include_internal=False)
    entries = await tickets.time_entries(ticket)
    names = await catalog.product_names([ticket.product_code])
    return TicketDetail(
        number=tickets.ticket_number(ticket.id),
        id=ticket.id,
        subject=ticket.subject,
        description=ticket.description,
        status=ticket.status,
        product_code=ticket.product_code,
        product_name=names[0] if names else ticket.product_code,
        channel=ticket.channel,
        created_at=ticket.created_at,
        messages=[
            MessageOut(
                id=m["id"],
                author_name=m["author_name"] or "",
                from_support=m["author_role"] in policy.STAFF,
                body=m["body"],
                created_at=m["created_at"],
            )
            for m in messages
        ],
        time_entries=[
            TimeEntryOut(
                id=e["id"],
                performed_on=e["performed_on"],
                technician_name=e["technician_name"] or "",
                channel=e["channel"],
                actual_minutes=e["actual_minutes"],
                billed_minutes=e["billed_minutes"],
                coverage=e["coverage"],
                account_minutes=e["account_minutes"],
                hourly_minutes=e["hourly_minutes"],
                hourly_amount_ore=e["hourly_amount_ore"],
                voided=e["voided_at"] is not None,
            )
            for e in entries
        ],
    )


# --- the usage statement -----------------------------------------------------------------


class UsageQuery(msgspec.Struct):
    period: validation.field(
        Period | None,
        message=N_("Ukjent periode."),
        description="last_12_months unless given; custom when only from/to are given",
    ) = None
    start: validation.field(
        datetime.date | None,
        message=DATE_INVALID,
        description="With period=custom: the first day (YYYY-MM-DD)",
    ) = msgspec.field(name="from", default=None)
    end: validation.field(
        datetime.date | None,
        message=DATE_INVALID,
        description="With period=custom: the last day, included (YYYY-MM-DD)",
    ) = msgspec.field(name="to", default=None)
    product: _described(str, "Only this product code", max_length=40) = ""
    cursor: validation.field(
        str,
        message=CURSOR_INVALID,
        max_length=12,
        pattern=r"^[LT][0-9]{1,9}$",
        description="Where the page starts: `next` of the previous page",
    ) = ""


class UsageRow(msgspec.Struct):
    id: str  # the row's cursor: "L12" a ledger operation, "T7" support that moved no minutes
    at: datetime.datetime  # when it was recorded
    day: datetime.date  # that, in Europe/Oslo
    kind: str  # credit, debit, expiry, refund, adjustment, reversal, or support
    minutes: int  # moved, signed: + into the time account, - out of it
    balance: int  # the time account's minutes after this row
    reason: str  # why, as the customer is told
    ticket_number: str | None
    ticket_subject: str | None
    technician: str | None
    product_code: str | None
    product_name: str | None
    channel: str | None
    actual_minutes: int | None
    billed_minutes: int | None
    paid_by: str | None  # plan, account, split (account and hourly) or hourly
    hourly_minutes: int
    hourly_amount_ore: int  # ex. MVA
    voided: bool  # support voided since (its minutes come back on a row of their own)


class Usage(msgspec.Struct):
    period_start: datetime.date  # the first day the filter asks for
    period_end: datetime.date  # its last day, included
    rows: list[UsageRow]  # newest first
    next: str | None  # the `cursor` of the next page; null on the last one


def statement_filter(query: UsageQuery) -> statement.StatementFilter:
    """The statement's filter for the API's query; from/to only with a custom period."""
    dates = query.start is not None or query.end is not None
    period = query.period or ("custom" if dates else "last_12_months")
    if dates and period != "custom":
        message = N_("«from» og «to» gjelder bare med period=custom.")
        raise ValidationFailed({"period": message})
    return statement.StatementFilter(
        period=period, start=query.start, end=query.end, product=query.product, after=query.cursor
    )


async def usage(user: User, query: UsageQuery) -> Usage:
    chosen = statement_filter(query)
    page = await statement.page_of(user.company, chosen)
    first, last = statement.period_bounds(chosen, clock.today())
    return Usage(
        period_start=first,
        period_end=last,
        rows=[
            UsageRow(
                id=row.cursor,
                at=row.at,
                day=row.day,
                kind=row.kind,
                minutes=row.minutes,
                balance=row.balance,
                reason=row.reason,
                ticket_number=tickets.ticket_number(row.ticket_id) if row.ticket_id else None,
                ticket_subject=row.ticket_subject,
                technician=row.technician,
                product_code=row.product_code,
                product_name=row.product_name,
                channel=row.channel,
                actual_minutes=row.actual_minutes,
                billed_minutes=row.billed_minutes,
                paid_by=row.paid_by,
                hourly_minutes=row.hourly_minutes,
                hourly_amount_ore=row.hourly_amount_ore,
                voided=row.voided,
            )
            for row in page.rows
        ],
        next=page.next_after or None,
    )


# --- update advisories (issue 13) --------------------------------------------------------------


class AdvisoryOut(msgspec.Struct):
    id: int
    product: str  # the product's code
    title: str  # the version or patch, e.g. "Inventor 2027.1 Update"
    verdict: Literal["safe", "wait", "known_problems", "do_not_install"]
    revision: int
    summary: str
    details: str
    applies_to: str
    published_at: datetime.datetime
    updated_at: datetime.datetime
    withdrawn_at: datetime.datetime | None  # a withdrawn advisory's verdict no longer holds


class AdvisoryList(msgspec.Struct):
    advisories: list[AdvisoryOut]  # for the products the company is covered for, newest first


async def advisory_list(user: User) -> AdvisoryList:
    found = await advisories.for_company(user)
    return AdvisoryList(
        advisories=[
            AdvisoryOut(
                id=a.id,
                product=a.product_code,
                title=a.title,
                verdict=a.verdict,
                revision=a.revision,
                summary=a.summary,
                details=a.details,
                applies_to=a.applies_to,
                published_at=a.created_at,
                updated_at=a.updated_at,
                withdrawn_at=a.withdrawn_at,
            )
            for a in found
        ]
    )
