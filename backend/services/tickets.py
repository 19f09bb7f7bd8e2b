"""Support tickets (SPEC §6): opened by (or for) the superuser, worked by technicians."""

from __future__ import annotations

import base64
import datetime
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import msgspec

from backend.db import contains_text, fetch, from_json, json_rows, write_transaction
from backend.i18n import N_
from backend.services import (
    activity,
    attachments,
    catalog,
    clock,
    coverage,
    policy,
    ticket_mail,
    validation,
)
from backend.services.availability import EXTRA_CLOSED_DAYS, availability_at
from backend.services.errors import NotFound, ValidationFailed
from backend.tables import (
    Channel,
    ChargeStatus,
    Company,
    Coverage,
    EntryKind,
    LedgerEntry,
    Ticket,
    TicketMessage,
    TicketStatus,
    TimeEntry,
    User,
)

PAGE_SIZE = 20
# Staff open tickets for what came in by phone or mail; customers use the web form.
StaffChannel = Literal["phone", "mail"]
STAFF_CHANNELS: tuple[str, ...] = get_args(StaffChannel)
NUMBER = re.compile(r"^\s*(?:SUP-?)?0*(\d{1,9})\s*$", re.IGNORECASE | re.ASCII)
STATUS_LABELS = {
    TicketStatus.open.value: N_("Åpen"),
    TicketStatus.in_progress.value: N_("Under arbeid"),
    TicketStatus.waiting_for_customer.value: N_("Venter på kunden"),
    TicketStatus.resolved.value: N_("Løst"),
    TicketStatus.closed.value: N_("Lukket"),
}
CHANNEL_LABELS = {
    Channel.phone.value: N_("Telefon"),
    Channel.mail.value: N_("E-post"),
    Channel.remote.value: N_("Fjernhjelp"),
    Channel.web.value: N_("Nettskjema"),
}
DONE_STATUSES = [TicketStatus.resolved.value, TicketStatus.closed.value]
# The queue's default: tickets that wait on support.
WAITING_ON_SUPPORT = (TicketStatus.open.value, TicketStatus.in_progress.value)
# The staff queue's status filter for every ticket, whatever its status.
ANY_STATUS = "all"
SEARCH_MAX = 200


def ticket_number(ticket_id: int) -> str:
    return f"SUP-{ticket_id:06d}"


class TicketRow(msgspec.Struct, frozen=True):
    """One line of the staff queue. A struct, not a dict:
    templates read its fields as attributes, which on a dict cost Jinja a failed lookup each."""

    id: int
    company: int
    company_name: str
    product_code: str
    product_name: str  # the catalog's name (of a retired product too), else the code
    subject: str
    channel: str
    status: str
    created_at: datetime.datetime
    waiting_since: datetime.datetime | None


_COMPUTED_COLUMNS = {
    "company_name": "company.name AS company_name",
    "product_name": "coalesce(catalog_product.name, ticket.product_code) AS product_name",
}
_TICKET_ROW_COLUMNS = ", ".join(
    _COMPUTED_COLUMNS.get(name, f"ticket.{name}") for name in TicketRow.__struct_fields__
)
_TICKET_ROW_TABLES = (
    "ticket JOIN company ON company.id = ticket.company"
    " LEFT JOIN catalog_product ON catalog_product.code = ticket.product_code"
)


@dataclass(frozen=True)
class TicketPage:
    tickets: list[TicketRow]
    page: int
    pages: int
    total: int
    offer: catalog.Offer  # read with the page: the filter's products, the rows' names


PRODUCT_UNKNOWN = N_("Velg et produkt fra listen.")
CHANNEL_UNKNOWN = N_("Velg en kanal.")
BODY_MAX = 10_000
Body = validation.body(BODY_MAX)


class NewTicket(msgspec.Struct):
    """The superuser's web form (SPEC §6)."""

    product: validation.field(str, min_length=1, max_length=40, message=PRODUCT_UNKNOWN)
    subject: validation.line(200)
    description: Body


class NewTicketFor(NewTicket):
    """Staff opening a ticket on a company's behalf, for what came in by phone or mail."""

    company: validation.field(int, ge=1, le=validation.MAX_ID, message=N_("Velg et firma."))
    channel: validation.field(StaffChannel, message=CHANNEL_UNKNOWN)


class CustomerReply(msgspec.Struct):
    body: Body


class Reply(CustomerReply):
    """Staff's reply, or with `internal` "1" a note customers never see."""

    internal: validation.field(str, max_length=1) = ""


class TicketFilter(msgspec.Struct):
    """The ticket history's and the staff queue's filters (a query string)."""

    q: validation.field(str, max_length=SEARCH_MAX) = ""
    status: validation.field(str, max_length=40) = ""
    product: validation.field(str, max_length=40) = ""


class HistoryFilter(TicketFilter):
    """The customer's ticket history: the filters and where a page starts (`after`, the
    cursor of the last row shown; empty for the newest)."""

    after: validation.field(str, max_length=40) = ""


class QueueFilter(TicketFilter):
    page: validation.Page = 1
    company: validation.RecordId = 0  # every company


class ProductForm(msgspec.Struct):
    product: validation.field(str, min_length=1, max_length=40, message=PRODUCT_UNKNOWN)


NO_PRODUCT = ""  # a ticket from a mail that named no product: staff choose it
PRODUCT_FIRST = N_("Velg et produkt for saken først.")


class StatusForm(msgspec.Struct):
    status: validation.field(TicketStatus, message=N_("Ukjent status."))


async def _unknown_product(values: Mapping[str, Any]) -> dict[str, str]:
    """A ticket names a product of the catalog: one no longer on sale too, as the agreements
    that cover it still do (support on it goes on; coverage decides how it is paid)."""
    product = values.get("product")
    if not product or await catalog.all_known([str(product)]):
        return {}
    return {"product": PRODUCT_UNKNOWN}


def _convert_with_files(
    values: Mapping[str, Any],
    form_type: type[validation.S],
    files: Sequence[attachments.IncomingFile],
    errors: Mapping[str, str] | None = None,
) -> validation.S:
    """validation.convert with the files' size rules among the fields' messages; files the
    form must ask for again when anything fails (a browser cannot keep them)."""
    try:
        return validation.convert(
            values, form_type, errors={**(errors or {}), **attachments.problems(files)}
        )
    except ValidationFailed as failed:
        raise attachments.asked_again(failed, files) from None


async def open_ticket(
    user: User, values: Mapping[str, Any], files: Sequence[attachments.IncomingFile] = ()
) -> Ticket:
    """The superuser opens a ticket on the web; staff open one for a company (phone, mail),
    naming the company and the channel in the form. `files` come with the ticket itself
    (services/attachments.py), stored with it or not at all."""
    if policy.can(user, "open_ticket_for"):
        errors = await _unknown_product(values)
        form = _convert_with_files(values, NewTicketFor, files, errors)
        if not await Company.exists().where(Company.id == form.company):
            raise attachments.asked_again(
                ValidationFailed({"company": N_("Velg et firma.")}), files
            )
        company_id, channel = form.company, form.channel
    else:
        policy.require(user, "open_ticket")
        form = _convert_with_files(values, NewTicket, files, await _unknown_product(values))
        company_id, channel = user.company, Channel.web.value
    return await create(
        company_id=company_id,
        opened_by=user.id,
        product_code=form.product,
        subject=form.subject,
        description=form.description,
        channel=channel,
        files=files,
    )


async def create(
    *,
    company_id: int,
    opened_by: int,
    product_code: str,
    subject: str,
    description: str,
    channel: str,
    files: Sequence[attachments.IncomingFile] = (),
) -> Ticket:
    """A new ticket, however it came in (the web form, staff, a mail), with the `files` that
    came with it. `product_code` NO_PRODUCT: a mail that named no product; staff choose it
    (set_product)."""
    now = clock.now()
    ticket = Ticket(
        company=company_id,
        product_code=product_code,
        subject=subject,
        description=description,
        channel=channel,
        opened_by=opened_by,
        created_at=now,
        last_activity_at=now,
    )
    async with write_transaction(Ticket._meta.db):
        await ticket.save()
        await attachments.store(files, ticket_id=ticket.id)
    return ticket


def first_look(
    ticket: Ticket, extra_closed: tuple[tuple[int, int], ...] = EXTRA_CLOSED_DAYS
) -> datetime.datetime | None:
    """When support will first look at a ticket opened while closed (None: open then), with
    the extra closed days in force (services/business.py)."""
    return availability_at(ticket.created_at, extra_closed).next_opening


async def get_ticket(user: User, ticket_id: int) -> Ticket:
    """The ticket, if this user may see it: staff see all, a company only its own."""
    ticket = await Ticket.objects().get(Ticket.id == ticket_id)
    if ticket is None or not policy.can(user, "view_ticket", ticket):
        raise NotFound("no such ticket for this user")
    return ticket


async def add_message(
    user: User,
    ticket: Ticket,
    body: str | Mapping[str, Any],
    *,
    internal: bool = False,
    files: Sequence[attachments.IncomingFile] = (),
) -> TicketMessage:
    """A reply in the thread, with its `files` (services/attachments.py) or not at all. The
    superuser's reply reopens a resolved ticket and starts the queue's clock again; a staff
    reply stops it (support has answered), an internal note does not (the customer still
    waits). Internal notes, and their files, are for staff only. A staff reply also goes to
    the ticket's people by mail (services/ticket_mail.py)."""
    policy.require(user, "reply", ticket)
    reply = _convert_with_files({"body": body} if isinstance(body, str) else body, Reply, files)
    internal = internal or reply.internal == "1"
    if internal:
        policy.require(user, "internal_note", ticket)
    # The staff reply's mail is written with the reply, or neither is.
    async with write_transaction(Ticket._meta.db):
        message = await record_message(user, ticket, reply.body, internal=internal, files=files)
        if policy.is_staff(user) and not internal:
            await ticket_mail.mail_staff_reply(ticket, message, user)
    return message


async def record_message(
    author: User,
    ticket: Ticket,
    text: str,
    *,
    internal: bool = False,
    files: Sequence[attachments.IncomingFile] = (),
) -> TicketMessage:
    """The message in the thread, its files, and what it does to the ticket (see add_message),
    for a reply on the web and one that came by mail (services/inbound_mail.py) alike. Inside
    the caller's transaction."""
    message = TicketMessage(ticket=ticket.id, author=author.id, body=text, internal=internal)
    await message.save()
    await attachments.store(files, ticket_id=ticket.id, message_id=message.id)
    if not internal:
        await activity.record(ticket.id, message.created_at)
    if policy.is_staff(author):
        if not internal:
            await Ticket.update({Ticket.waiting_since: None}).where(Ticket.id == ticket.id)
    else:
        values: dict = {Ticket.waiting_since: clock.now()}
        if ticket.status in (TicketStatus.resolved.value, TicketStatus.waiting_for_customer.value):
            values[Ticket.status] = TicketStatus.open.value
        await Ticket.update(values).where(Ticket.id == ticket.id)
    return message


async def set_product(user: User, ticket: Ticket, values: Mapping[str, Any]) -> None:
    """Staff choose (or correct) what a ticket is about, from the catalog's products: a ticket
    from a mail that named none has none until then. Time already logged keeps the coverage
    it was decided with (SPEC §2: decided when logged)."""
    policy.require(user, "set_product", ticket)
    form = validation.convert(values, ProductForm, errors=await _unknown_product(values))
    await Ticket.update({Ticket.product_code: form.product}).where(Ticket.id == ticket.id)


async def set_status(user: User, ticket: Ticket, status: str | TicketStatus) -> None:
    """Staff set any status. The queue's clock runs only while a ticket waits on support: it
    stops when the ticket waits for the customer or is done, and starts when a ticket comes
    back to support from such a status (within open/in progress it keeps running, or not)."""
    policy.require(user, "set_status", ticket)
    status = validation.convert({"status": status}, StatusForm).status.value
    values: dict = {Ticket.status: status}
    if status not in WAITING_ON_SUPPORT:
        values[Ticket.waiting_since] = None
    elif ticket.status not in WAITING_ON_SUPPORT:
        values[Ticket.waiting_since] = clock.now()
    await Ticket.update(values).where(Ticket.id == ticket.id)
    if status != ticket.status:
        await activity.record(ticket.id)


def can_resolve(user: User, ticket: Ticket) -> bool:
    """The customer's superuser may close the matter themselves while support still has it
    or waits for them; members only read (SPEC §1)."""
    return policy.can(user, "resolve", ticket) and ticket.status not in DONE_STATUSES


async def resolve_by_customer(user: User, ticket: Ticket) -> None:
    """The customer's "Merk som løst": the superuser marks their own ticket resolved, which
    takes it out of the queue; a later reply reopens it (add_message). Twice is once."""
    policy.require(user, "resolve", ticket)
    if not can_resolve(user, ticket):
        return
    resolved = (
        await Ticket.update(
            {Ticket.status: TicketStatus.resolved.value, Ticket.waiting_since: None}
        )
        .where((Ticket.id == ticket.id) & Ticket.status.not_in(DONE_STATUSES))
        .returning(Ticket.id)
    )
    if resolved:
        await activity.record(ticket.id)


async def thread(ticket: Ticket, *, include_internal: bool) -> list[dict[str, Any]]:
    query = TicketMessage.select(
        TicketMessage.id,
        TicketMessage.body,
        TicketMessage.internal,
        TicketMessage.created_at,
        TicketMessage.author.name.as_alias("author_name"),
        TicketMessage.author.role.as_alias("author_role"),
    ).where(TicketMessage.ticket == ticket.id)
    if not include_internal:
        query = query.where(TicketMessage.internal.eq(False))
    return await query.order_by(TicketMessage.id)


async def time_entries(ticket: Ticket) -> list[dict[str, Any]]:
    return (
        await TimeEntry.select(
            *TimeEntry.all_columns(), TimeEntry.technician.name.as_alias("technician_name")
        )
        .where(TimeEntry.ticket == ticket.id)
        .order_by(TimeEntry.performed_on, TimeEntry.id)
    )


def _product_and_query(product: str, q: str, *, customer_text: bool) -> tuple[list[str], list[Any]]:
    """SQL conditions on `ticket` (with their values) for the product filter and the search
    box, shared by the history and the queue. The box finds a number (SUP-000123 or 123) or
    text in the subject; with `customer_text`, also in the description and in the messages
    the customer can see, never in internal notes. Filters come from query strings: control
    characters (which PostgreSQL refuses in text) are dropped, an unknown product matches
    nothing."""
    conditions: list[str] = []
    args: list[Any] = []
    product = validation.CONTROL_CHARACTER.sub("", product)
    if product:
        conditions.append("ticket.product_code = {}")
        args.append(product)
    q = validation.CONTROL_CHARACTER.sub("", q).strip()[:SEARCH_MAX]
    if not q:
        return conditions, args
    by_subject, pattern = contains_text("ticket.subject", q)
    found_by, found_args = [by_subject], [pattern]
    if customer_text:
        by_description, _ = contains_text("ticket.description", q)
        by_message, _ = contains_text("m.body", q)
        found_by += [
            by_description,
            "EXISTS (SELECT 1 FROM ticket_message AS m WHERE m.ticket = ticket.id"
            f" AND NOT m.internal AND {by_message})",
        ]
        found_args += [pattern, pattern]
    if number := NUMBER.match(q):
        found_by.insert(0, "ticket.id = {}")
        found_args.insert(0, int(number.group(1)))
    conditions.append(f"({' OR '.join(found_by)})")
    args.extend(found_args)
    return conditions, args


async def queue(
    *,
    company_id: int | None = None,
    q: str = "",
    status: str = "",
    product: str = "",
    page: int = 1,
) -> TicketPage:
    """The staff queue: work to do, in pages. Without a status filter only tickets that wait
    on support, the longest waiting first (those whose clock is stopped after them);
    `ANY_STATUS` shows all; an unknown status matches nothing. Searched by number or subject
    (staff's own search: internal notes are theirs, but the queue never searched text)."""
    # Raw SQL: Piccolo's builder cost more than the database on the busiest list pages.
    conditions: list[str] = []
    args: list[Any] = []
    if company_id is not None:
        conditions.append("ticket.company = {}")
        args.append(company_id)
    if status in STATUS_LABELS:
        conditions.append("ticket.status = {}")
        args.append(status)
    elif status != ANY_STATUS:
        conditions.append(f"ticket.status IN ({', '.join('{}' for _ in WAITING_ON_SUPPORT)})")
        args.extend(WAITING_ON_SUPPORT)
    more, more_args = _product_and_query(product, q, customer_text=False)
    conditions += more
    args += more_args
    where = " AND ".join(conditions) or "1 = 1"
    # Stopped clocks (NULL) last on both engines: SQLite sorts NULL first, PostgreSQL last.
    # Spelled for the page's query, then for its rows in the JSON array.
    order = "ticket.waiting_since IS NULL, ticket.waiting_since, ticket.id"
    order_rows = "waiting_since IS NULL, waiting_since, id"
    engine = Ticket._meta.db

    async def page_of(number: int) -> tuple[list[TicketRow], int, catalog.Offer]:
        """The rows of page `number`, the number of matches and the offer: one statement, one
        row. The count is an uncorrelated subquery, computed once (a window count would make
        the database read every match)."""
        rows = json_rows(
            engine,
            f"SELECT {_TICKET_ROW_COLUMNS} FROM {_TICKET_ROW_TABLES} WHERE {where}"
            f" ORDER BY {order} LIMIT {PAGE_SIZE} OFFSET {(number - 1) * PAGE_SIZE}",
            TicketRow.__struct_fields__,
            order_by=order_rows,
        )
        [row] = await fetch(
            Ticket,
            f"SELECT {rows} AS tickets, (SELECT count(*) FROM ticket WHERE {where}) AS matches,"
            f" {catalog.offer_columns(engine)}",
            *args,
            *args,
        )
        found = from_json(row["tickets"], list[TicketRow])
        return found, row["matches"], catalog.offer_from_row(row)

    page = max(1, page)
    rows, total, offer = await page_of(page)
    last_page = max(1, -(-total // PAGE_SIZE))
    if page > last_page:
        # Past the last page (an old link, a typed number): show the last one.
        page = last_page
        rows, total, offer = await page_of(page)
    return TicketPage(tickets=rows, page=page, pages=last_page, total=total, offer=offer)


# --- the customer's ticket history -------------------------------------------------------

HISTORY_PAGE_SIZE = 20
# The history counts its matches this far: beyond it, "more than" (counting all of a large
# company's tickets for every page would read them all).
COUNT_LIMIT = 1000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


class HistoryRow(msgspec.Struct, frozen=True):
    """A ticket in the customer's history, with its time and what it cost."""

    id: int
    subject: str
    status: str
    product_code: str
    product_name: str  # the catalog's name (of a retired product too), else the code
    created_at: datetime.datetime
    last_activity_at: datetime.datetime
    billed_minutes: int  # of its time entries that are not voided
    plan_minutes: int  # of those, covered by the plan
    account_minutes: int  # taken from the time account
    hourly_minutes: int  # billed at the hourly rate
    cost_ore: int  # its hourly charges ex. MVA, unless cancelled or refunded
    outstanding_ore: int  # of those, not paid yet

    @property
    def paid_by(self) -> list[tuple[str, int]]:
        """How its billed minutes were paid: ("plan" | "account" | "hourly", minutes), each
        that paid any."""
        parts = (
            ("plan", self.plan_minutes),
            ("account", self.account_minutes),
            ("hourly", self.hourly_minutes),
        )
        return [(how, minutes) for how, minutes in parts if minutes]

    @property
    def cursor(self) -> str:
        return encode_cursor(self.last_activity_at, self.id)


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    next_after: str  # the cursor of the next page, "" on the last one
    matches: int  # how many tickets the filter finds, counted up to COUNT_LIMIT + 1
    bad_cursor: bool  # `after` was not a cursor of ours: the rows are the newest
    offer: catalog.Offer  # read with the page: the filter's products

    @property
    def more_than_counted(self) -> bool:
        return self.matches > COUNT_LIMIT


def encode_cursor(at: datetime.datetime, ticket_id: int) -> str:
    """An opaque cursor for a row of the history: its last activity (to the microsecond,
    as both engines keep it) and its id."""
    if at.tzinfo is None:  # SQLite's own CURRENT_TIMESTAMP, in UTC
        at = at.replace(tzinfo=datetime.UTC)
    micros = (at - _EPOCH) // _MICROSECOND
    return base64.urlsafe_b64encode(f"{micros}.{ticket_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime.datetime, int] | None:
    """(last activity, id) from `encode_cursor`; None from anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        micros, ticket_id = text.split(".")
        if not (micros.isdigit() and ticket_id.isdigit() and len(ticket_id) <= 10):
            return None
        at = _EPOCH + int(micros) * _MICROSECOND
    except (ValueError, OverflowError, UnicodeDecodeError):
        return None
    if int(ticket_id) > validation.MAX_ID or at.year > 9000:
        return None
    return at, int(ticket_id)


async def history(company_id: int, chosen: HistoryFilter) -> HistoryPage:
    """A page of the company's tickets, the latest activity first (services/activity.py),
    filtered by status, product and the search box (number, subject or text the customer
    can see), from the row after `chosen.after`.

    Paged by keyset (last activity, id), never by offset: a ticket's key only rises, so a
    ticket shown on an earlier page is never shown again, and one that had no activity since
    is never skipped. A ticket that has activity meanwhile moves to the top, above the
    pages being read: it shows there the next time the list is opened from the start."""
    conditions = ["ticket.company = {}"]
    args: list[Any] = [company_id]
    if chosen.status in STATUS_LABELS:
        conditions.append("ticket.status = {}")
        args.append(chosen.status)
    more, more_args = _product_and_query(chosen.product, chosen.q, customer_text=True)
    conditions += more
    args += more_args
    where = " AND ".join(conditions)
    start = decode_cursor(chosen.after) if chosen.after else None
    page_where, page_args = where, args
    if start is not None:
        page_where = f"{where} AND (ticket.last_activity_at, ticket.id) < ({{}}, {{}})"
        page_args = [*args, *start]
    [row] = await fetch(Ticket, _history_sql(page_where, where), *page_args, *args)
    found = from_json(row["tickets"], list[HistoryRow])
    more_rows = len(found) > HISTORY_PAGE_SIZE
    found = found[:HISTORY_PAGE_SIZE]
    return HistoryPage(
        rows=found,
        next_after=found[-1].cursor if more_rows else "",
        matches=row["matches"],
        bad_cursor=bool(chosen.after) and start is None,
        offer=catalog.offer_from_row(row),
    )


_VISIBLE_CHARGES = f"('{ChargeStatus.outstanding.value}', '{ChargeStatus.paid.value}')"


def _history_sql(page_where: str, where: str) -> str:
    """One statement: the page's rows (one more than a page, to know if there are more) with
    each ticket's time and cost (looked up for those rows only, by index), the count of
    matches up to COUNT_LIMIT + 1, and the catalog."""
    engine = Ticket._meta.db
    page = (
        "SELECT ticket.id, ticket.subject, ticket.status, ticket.product_code,"
        " coalesce(catalog_product.name, ticket.product_code) AS product_name,"
        " ticket.created_at, ticket.last_activity_at FROM ticket"
        " LEFT JOIN catalog_product ON catalog_product.code = ticket.product_code"
        f" WHERE {page_where}"
        f" ORDER BY ticket.last_activity_at DESC, ticket.id DESC LIMIT {HISTORY_PAGE_SIZE + 1}"
    )
    # One pass over the page's time entries and their charges (at most one per entry), not a
    # subquery per figure and row: PostgreSQL spent longer planning those than running them.
    # A voided entry bills nothing; its charge is cancelled, which `_VISIBLE_CHARGES` leaves out.
    billed = "CASE WHEN te.voided_at IS NULL THEN te.{} ELSE 0 END"
    rows = (
        f"WITH p AS ({page}) SELECT p.id, p.subject, p.status, p.product_code, p.product_name,"
        " p.created_at, p.last_activity_at,"
        f" coalesce(sum({billed.format('billed_minutes')}), 0) AS billed_minutes,"
        f" coalesce(sum(CASE WHEN te.coverage = '{Coverage.plan.value}'"
        f" THEN {billed.format('billed_minutes')} ELSE 0 END), 0) AS plan_minutes,"
        f" coalesce(sum({billed.format('account_minutes')}), 0) AS account_minutes,"
        f" coalesce(sum({billed.format('hourly_minutes')}), 0) AS hourly_minutes,"
        f" coalesce(sum(CASE WHEN h.status IN {_VISIBLE_CHARGES} THEN h.amount_ore ELSE 0 END),"
        " 0) AS cost_ore,"
        f" coalesce(sum(CASE WHEN h.status = '{ChargeStatus.outstanding.value}'"
        " THEN h.amount_ore ELSE 0 END), 0) AS outstanding_ore"
        " FROM p LEFT JOIN time_entry AS te ON te.ticket = p.id"
        " LEFT JOIN hourly_charge AS h ON h.time_entry = te.id"
        " GROUP BY p.id, p.subject, p.status, p.product_code, p.product_name, p.created_at,"
        " p.last_activity_at ORDER BY p.last_activity_at DESC, p.id DESC"
    )
    tickets = json_rows(
        engine, rows, HistoryRow.__struct_fields__, order_by="last_activity_at DESC, id DESC"
    )
    matches = (
        f"(SELECT count(*) FROM (SELECT 1 FROM ticket WHERE {where} LIMIT {COUNT_LIMIT + 1}) AS c)"
    )
    return f"SELECT {tickets} AS tickets, {matches} AS matches, {catalog.offer_columns(engine)}"


def pending_first_look(
    ticket: Ticket,
    messages: list[dict[str, Any]],
    now: datetime.datetime,
    extra_closed: tuple[tuple[int, int], ...] = EXTRA_CLOSED_DAYS,
) -> datetime.datetime | None:
    """For a ticket opened while support was closed: when support will first look at it, as
    long as that is still ahead and no one from support has answered yet."""
    if any(message["author_role"] in policy.STAFF for message in messages):
        return None
    moment = first_look(ticket, extra_closed)
    return moment if moment is not None and moment > now else None


def new_idempotency_key() -> str:
    """A fresh key for each log-time form rendered."""
    return secrets.token_urlsafe(24)


def performed_on(value: str) -> datetime.date:
    """The day the support was given: ISO (what `<input type="date">` sends) or dd.mm.yyyy;
    empty means today. Which days a ticket takes: coverage.performed_on_error."""
    value = value.strip()
    if not value:
        return clock.today()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise validation.FieldError(N_("Skriv inn en gyldig dato, for eksempel 31.01.2026."))


class TimeForm(msgspec.Struct):
    """The log-time form. Its idempotency key (scoped to the ticket) makes a double click or a
    retried post one entry; a post without one always makes a new entry."""

    minutes: coverage.ActualMinutes
    performed_on: validation.field(str, max_length=20, check=performed_on)
    channel: validation.field(Channel, message=CHANNEL_UNKNOWN)
    note: validation.line(500, optional=True) = ""
    idempotency_key: validation.field(
        str,
        clean=validation.strip,
        max_length=64,
        message=N_("Skjemaet var utløpt eller ugyldig. Last siden på nytt og prøv igjen."),
        pattern=r"^([A-Za-z0-9_-]{16,64})?$",
    ) = ""


async def log_time_from_form(user: User, ticket: Ticket, values: Mapping[str, Any]) -> TimeEntry:
    """A technician logs support time on a ticket from the log-time form; coverage is decided
    by coverage.record_time_entry (SPEC §2). Every field's message is returned at once, the day's
    place in the ticket's life (coverage.performed_on_error) with them."""
    policy.require(user, "log_time", ticket)
    # Coverage follows the product (SPEC §2): none chosen, nothing to decide it by.
    errors: dict[str, str] = {"form": PRODUCT_FIRST} if ticket.product_code == NO_PRODUCT else {}
    try:
        day = performed_on(str(values.get("performed_on", "")))
        if message := coverage.performed_on_error(ticket, day):
            errors["performed_on"] = message
    except validation.FieldError:
        pass  # the form's own message
    try:
        form = validation.convert(values, TimeForm, errors=errors)
    except ValidationFailed as failed:
        # The key is a hidden field: its message is the whole form's.
        if message := failed.errors.pop("idempotency_key", None):
            failed.errors["form"] = message
        raise
    return await coverage.record_time_entry(
        ticket=ticket,
        technician=user,
        actual=form.minutes,
        performed_on=form.performed_on,
        channel=form.channel.value,
        note=form.note,
        key=f"t{ticket.id}:{form.idempotency_key}" if form.idempotency_key else None,
    )


async def get_time_entry(user: User, entry_id: int) -> TimeEntry:
    """A time entry, for staff only."""
    policy.require(user, "void_time")
    entry = await TimeEntry.objects().get(TimeEntry.id == entry_id)
    if entry is None:
        raise NotFound("no such time entry")
    return entry


async def time_log(
    *, ticket_id: int | None = None, company_id: int | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Time entries of a ticket (in the order worked) or the latest of a company (newest
    first), with who logged and who voided each, and `written_off_minutes`: minutes a void
    gave back to a lot that had expired since, and so were written off again."""
    query = TimeEntry.select(
        *TimeEntry.all_columns(),
        TimeEntry.technician.name.as_alias("technician_name"),
        TimeEntry.voided_by.name.as_alias("voided_by_name"),
        TimeEntry.ticket.subject.as_alias("ticket_subject"),
    )
    if ticket_id is not None:
        query = query.where(TimeEntry.ticket == ticket_id).order_by(
            TimeEntry.performed_on, TimeEntry.id
        )
    else:
        query = query.where(TimeEntry.company == company_id).order_by(
            TimeEntry.performed_on, TimeEntry.id, ascending=False
        )
    if limit:
        query = query.limit(limit)
    rows = await query
    written_off = await _written_off_on_void([r["id"] for r in rows if r["voided_at"]])
    for row in rows:
        row["written_off_minutes"] = written_off.get(row["id"], 0)
    return rows


async def _written_off_on_void(entry_ids: list[int]) -> dict[int, int]:
    # coverage.void_time_entry reverses under the key "void:<entry id>"; ledger.reverse writes
    # an expiry entry in that operation for minutes given back to an expired lot.
    if not entry_ids:
        return {}
    key = LedgerEntry.operation.idempotency_key
    rows = await LedgerEntry.select(key.as_alias("key"), LedgerEntry.minutes).where(
        key.is_in([f"void:{i}" for i in entry_ids]) & (LedgerEntry.kind == EntryKind.expiry.value)
    )
    minutes: dict[int, int] = {}
    for row in rows:
        entry_id = int(row["key"].removeprefix("void:"))
        minutes[entry_id] = minutes.get(entry_id, 0) - row["minutes"]
    return minutes


class OpenTicket(msgspec.Struct, frozen=True):
    id: int
    subject: str
    status: str


def open_tickets_json(engine, company: str, limit: int = 5) -> str:
    """The company's tickets still being worked on, newest first, as one column of a page's
    single query (services/overview.py): a JSON array of `OpenTicket`s; `company` is an SQL
    expression."""
    done = ", ".join(f"'{status}'" for status in DONE_STATUSES)
    select = (
        "SELECT tk.id, tk.subject, tk.status FROM ticket AS tk"
        f" WHERE tk.company = {company} AND tk.status NOT IN ({done})"
        f" ORDER BY tk.id DESC LIMIT {int(limit)}"
    )
    return json_rows(engine, select, ("id", "subject", "status"), order_by="id DESC")
