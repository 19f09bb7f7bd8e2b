"""The company's support tickets: history, opening one, its page and replies (SPEC §6)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import File, Response, Template

from backend.services import attachments, catalog, clock, coverage, tickets
from backend.tables import Ticket
from backend.web.errors import FormView
from backend.web.events import TICKETS_CHANGED
from backend.web.files import attachment_response
from backend.web.forms import form_operation, read_query, read_values_and_files
from backend.web.guards import allowed
from backend.web.templating import asks_for_region, redirect
from backend.web.templating import page as render_page

# The history's regions: the filter form swaps the whole list, "Vis flere" appends rows.
ROWS_REGION = "ticket-rows"
LIST_REGION = "ticket-list"


async def _form_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    offer = await catalog.current_offer()
    products = await coverage.ticket_products(request.user.company, clock.today())
    return {
        "products": products,
        "product_names": {p.code: p.name for p in products},
        "uncovered": await coverage.billed_hourly_products(request.user.company, clock.today()),
        "hourly_rate_ore": offer.prices.hourly_rate_ore if offer.prices else None,
        "form": values,
        "errors": errors,
    }


async def _ticket_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    ticket = await tickets.get_ticket(request.user, request.path_params["ticket_id"])
    messages = await tickets.thread(ticket, include_internal=False)
    names = await catalog.product_names([ticket.product_code])
    offer = await catalog.current_offer()
    return {
        "coverage": await coverage.expected_coverage(
            ticket.company, ticket.product_code, clock.today()
        ),
        "hourly_rate_ore": offer.prices.hourly_rate_ore if offer.prices else None,
        "ticket": ticket,
        "number": tickets.ticket_number(ticket.id),
        "product_name": names[0] if names else ticket.product_code,
        "messages": messages,
        "attachments": await attachments.for_ticket(ticket, include_internal=False),
        "first_look": tickets.pending_first_look(
            ticket, messages, clock.now(), offer.business.extra_closed_days
        ),
        "entries": await tickets.time_entries(ticket),
        "can_resolve": tickets.can_resolve(request.user, ticket),
        "form": values,
        "errors": errors,
    }


NEW_TICKET_FORM = FormView("portal/tickets_new.html", "portal/_ticket_form.html", _form_context)
REPLY_FORM = FormView("portal/tickets_detail.html", "portal/_ticket_reply.html", _ticket_context)


class TicketsController(Controller):
    path = "/portal/tickets"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get(name="tickets")
    async def list_tickets(self, request: Request) -> Template:
        """The history, the latest activity first. The filter form swaps the rows region;
        "Vis flere" appends the next rows (or, without JavaScript, is the next page)."""
        chosen = read_query(request, tickets.HistoryFilter)
        found = await tickets.history(request.user.company, chosen)
        filters = {"q": chosen.q.strip(), "status": chosen.status, "product": chosen.product}
        kept = {name: value for name, value in filters.items() if value}
        context = {
            "found": found,
            "filters": filters,
            "products": found.offer.products,
            "count_limit": tickets.COUNT_LIMIT,
            "first_url": f"/portal/tickets?{urlencode(kept)}" if kept else "/portal/tickets",
            "next_url": f"/portal/tickets?{urlencode({**kept, 'after': found.next_after})}",
            "continued": bool(chosen.after) and not found.bad_cursor,
        }
        if asks_for_region(request, LIST_REGION):
            return Template("portal/_ticket_more.html", context=context)
        if asks_for_region(request, ROWS_REGION):
            return Template("portal/_ticket_rows.html", context=context)
        return render_page(request, "portal/tickets.html", **context)

    @get("/new", name="ticket_new", guards=[allowed("open_ticket")])
    async def new_ticket(
        self, request: Request, product: FromQuery[str] = "", subject: FromQuery[str] = ""
    ) -> Template:
        """The form, with the product and subject a link filled in (an update advisory's
        "open a ticket about this"); the post checks them like anything typed."""
        form = {"product": product[:40], "subject": subject[:200]}
        context = await _form_context(request, form, {})
        return render_page(request, "portal/tickets_new.html", **context)

    @post(
        name="ticket_create",
        operation_class=form_operation(tickets.NewTicket, files=True),
        guards=[allowed("open_ticket")],
        opt={"form": NEW_TICKET_FORM},
        request_max_body_size=attachments.REQUEST_BODY_LIMIT,
    )
    async def create_ticket(self, request: Request) -> Response:
        values, files = await read_values_and_files(request, tickets.NewTicket)
        ticket = await tickets.open_ticket(request.user, values, files)
        return redirect(request, f"/portal/tickets/{ticket.id}", TICKETS_CHANGED)

    @get("/{ticket_id:int}", name="ticket")
    async def show_ticket(self, request: Request, ticket_id: FromPath[int]) -> Template:
        context = await _ticket_context(request, {}, {})
        return render_page(request, "portal/tickets_detail.html", **context)

    @post(
        "/{ticket_id:int}/messages",
        name="ticket_reply",
        operation_class=form_operation(tickets.CustomerReply, files=True),
        opt={"form": REPLY_FORM},
        request_max_body_size=attachments.REQUEST_BODY_LIMIT,
    )
    async def reply(self, request: Request, ticket_id: FromPath[int]) -> Response:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        values, files = await read_values_and_files(request, tickets.CustomerReply)
        await tickets.add_message(request.user, ticket, values, files=files)
        return redirect(request, f"/portal/tickets/{ticket.id}", TICKETS_CHANGED)

    @post("/{ticket_id:int}/resolve", name="ticket_resolve")
    async def resolve(self, request: Request, ticket_id: FromPath[int]) -> Response:
        """The customer's "Merk som løst"; a reply afterwards reopens the ticket."""
        ticket: Ticket = await tickets.get_ticket(request.user, ticket_id)
        await tickets.resolve_by_customer(request.user, ticket)
        return redirect(request, f"/portal/tickets/{ticket.id}", TICKETS_CHANGED)

    @get("/{ticket_id:int}/attachments/{attachment_id:int}", name="ticket_attachment")
    async def download(
        self, request: Request, ticket_id: FromPath[int], attachment_id: FromPath[int]
    ) -> File:
        """A file of the company's ticket, as a download (members too; never an internal
        note's)."""
        ticket = await tickets.get_ticket(request.user, ticket_id)
        attachment, path = await attachments.get_for(request.user, ticket, attachment_id)
        return attachment_response(attachment, path)

    @get("/{ticket_id:int}/attachments/{attachment_id:int}/image", name="ticket_attachment_image")
    async def image(
        self, request: Request, ticket_id: FromPath[int], attachment_id: FromPath[int]
    ) -> File:
        """A verified PNG/JPEG shown as itself, for the thread's thumbnail; anything else 404."""
        ticket = await tickets.get_ticket(request.user, ticket_id)
        attachment, path = await attachments.get_for(request.user, ticket, attachment_id)
        return attachment_response(attachment, path, inline=True)
