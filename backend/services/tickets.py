"""Support tickets (SPEC §6): opened by (or for) the superuser, worked by technicians."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.i18n import N_
from backend.services import catalog, clock, validation
from backend.services.accounts import STAFF_ROLES
from backend.services.availability import availability_at
from backend.services.errors import NotAllowed, ValidationFailed
from backend.tables import (
    Channel,
    Company,
    Role,
    Ticket,
    TicketMessage,
    TicketStatus,
    TimeEntry,
    User,
)

PAGE_SIZE = 20
NUMBER = re.compile(r"^\s*(?:SUP-?)?0*(\d{1,9})\s*$", re.IGNORECASE)
STATUS_LABELS = {
    TicketStatus.open.value: N_("Åpen"),
    TicketStatus.in_progress.value: N_("Under arbeid"),
    TicketStatus.waiting_for_customer.value: N_("Venter på kunden"),
    TicketStatus.resolved.value: N_("Løst"),
    TicketStatus.closed.value: N_("Lukket"),
}


def ticket_number(ticket_id: int) -> str:
    return f"SUP-{ticket_id:06d}"


def is_staff(user: User) -> bool:
    return user.role in STAFF_ROLES


@dataclass(frozen=True)
class TicketPage:
    tickets: list[dict[str, Any]]
    page: int
    pages: int
    total: int


async def _clean_ticket_form(form: Mapping[str, str]) -> dict[str, Any]:
    products = {p.code for p in (await catalog.current_offer()).products}

    def product(value: str) -> str:
        if value not in products:
            raise validation.FieldError(N_("Velg et produkt fra listen."))
        return value

    return validation.clean(
        form,
        {
            "product": product,
            "subject": lambda v: validation.text(v, max_length=200),
            "description": lambda v: _body(v, 10_000),
        },
    )


def _body(value: str, max_length: int) -> str:
    value = value.strip()
    if not value:
        raise validation.FieldError(N_("Feltet må fylles ut."))
    if len(value) > max_length:
        raise validation.FieldError(N_("Teksten er for lang."))
    return value


async def open_ticket(
    user: User, form: Mapping[str, str], *, company_id: int | None = None, channel: str = "web"
) -> Ticket:
    """The superuser opens a ticket on the web; staff open one for a company (phone, mail)."""
    if is_staff(user):
        company = await Company.objects().get(Company.id == company_id) if company_id else None
        if company is None:
            raise ValidationFailed({"company": N_("Velg et firma.")})
        if channel not in {c.value for c in Channel}:
            raise ValidationFailed({"channel": N_("Velg en kanal.")})
    elif user.role == Role.superuser.value:
        company_id, channel = user.company, Channel.web.value
    else:
        raise NotAllowed("only the superuser opens tickets")
    cleaned = await _clean_ticket_form(form)
    ticket = Ticket(
        company=company_id,
        product_code=cleaned["product"],
        subject=cleaned["subject"],
        description=cleaned["description"],
        channel=channel,
        opened_by=user.id,
    )
    await ticket.save()
    return ticket


def first_look(ticket: Ticket) -> datetime.datetime | None:
    """When support will first look at a ticket opened while closed (None: open then)."""
    return availability_at(ticket.created_at).next_opening


async def get_ticket(user: User, ticket_id: int) -> Ticket:
    """The ticket, if this user may see it: staff see all, a company only its own."""
    ticket = await Ticket.objects().get(Ticket.id == ticket_id)
    if ticket is None or (not is_staff(user) and ticket.company != user.company):
        raise NotAllowed("no such ticket for this user")
    return ticket


async def add_message(user: User, ticket: Ticket, body: str, *, internal: bool = False) -> None:
    """A reply in the thread. The superuser's reply reopens a resolved ticket and puts it back
    in the queue; internal notes are for staff only."""
    if internal and not is_staff(user):
        raise NotAllowed("only staff write internal notes")
    if not is_staff(user) and (user.role != Role.superuser.value or ticket.company != user.company):
        raise NotAllowed("only the superuser replies")
    try:
        text = _body(body, 10_000)
    except validation.FieldError as error:
        raise ValidationFailed({"body": error.message}) from None
    await TicketMessage(ticket=ticket.id, author=user.id, body=text, internal=internal).save()
    if not is_staff(user):
        values: dict = {Ticket.waiting_since: clock.now()}
        if ticket.status in (TicketStatus.resolved.value, TicketStatus.waiting_for_customer.value):
            values[Ticket.status] = TicketStatus.open.value
        await Ticket.update(values).where(Ticket.id == ticket.id)


async def set_status(user: User, ticket: Ticket, status: str) -> None:
    if not is_staff(user):
        raise NotAllowed("only staff change the status")
    if status not in STATUS_LABELS:
        raise ValidationFailed({"status": N_("Ukjent status.")})
    await Ticket.update({Ticket.status: status}).where(Ticket.id == ticket.id)


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


async def search(
    *,
    company_id: int | None = None,
    q: str = "",
    status: str = "",
    product: str = "",
    page: int = 1,
    oldest_waiting_first: bool = False,
) -> TicketPage:
    """Tickets filtered by status and product, searched by number or subject, paginated.
    Customers see their company's, newest first; the staff queue shows the longest waiting
    first."""
    condition = Ticket.id > 0
    if company_id is not None:
        condition &= Ticket.company == company_id
    if status in STATUS_LABELS:
        condition &= Ticket.status == status
    if product:
        condition &= Ticket.product_code == product
    q = q.strip()
    if q:
        number = NUMBER.match(q)
        pattern = f"%{_escape_like(q)}%"
        # SQLite's LIKE ignores case already (and Piccolo warns about ILIKE there).
        sqlite = Ticket._meta.db.engine_type == "sqlite"
        by_subject = Ticket.subject.like(pattern) if sqlite else Ticket.subject.ilike(pattern)
        condition &= (Ticket.id == int(number.group(1))) | by_subject if number else by_subject
    total = await Ticket.count().where(condition)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    order = (Ticket.waiting_since, True) if oldest_waiting_first else (Ticket.id, False)
    rows = (
        await Ticket.select(*Ticket.all_columns(), Ticket.company.name.as_alias("company_name"))
        .where(condition)
        .order_by(order[0], ascending=order[1])
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return TicketPage(tickets=rows, page=page, pages=pages, total=total)


def _escape_like(text: str) -> str:
    # A typed "%" is text, not a pattern (an "_" only widens the match a little).
    return text.replace("%", "")
