"""The company's support tickets: history, opening one, its page and replies (SPEC §6)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Response, Template

from backend.services import catalog, clock, coverage, tickets, validation
from backend.services.accounts import STAFF_ROLES
from backend.services.errors import NotAllowed, ValidationFailed
from backend.tables import Ticket
from backend.web.forms import read_form
from backend.web.security import requires_company_user
from backend.web.templating import form_response, redirect, wants_fragment
from backend.web.templating import page as render_page

TICKET_FIELDS = ("product", "subject", "description")
ROWS_REGION = "ticket-rows"


def _asks_for_region(request: Request, region: str) -> bool:
    """An htmx request that targets one region of the page (not boosted navigation)."""
    if not wants_fragment(request):
        return False
    target = request.htmx.target or ""
    return target.rsplit("#", 1)[-1] == region


class TicketsController(Controller):
    path = "/portal/tickets"
    guards = [requires_company_user]  # noqa: RUF012

    @get(name="tickets")
    async def list_tickets(
        self,
        request: Request,
        q: FromQuery[str] = "",
        status: FromQuery[str] = "",
        product: FromQuery[str] = "",
        page: FromQuery[str] = "1",
    ) -> Template:
        found = await tickets.search(
            company_id=request.user.company,
            q=q,
            status=status,
            product=product,
            page=validation.record_id(page) or 1,
        )
        offer = await catalog.current_offer()
        context = {
            "found": found,
            "filters": {"q": q.strip(), "status": status, "product": product},
            "products": offer.products,
            "product_names": {p.code: p.name for p in offer.products},
            "status_labels": tickets.STATUS_LABELS,
            "ticket_number": tickets.ticket_number,
            "can_open": tickets.can_open(request.user),
        }
        if _asks_for_region(request, ROWS_REGION):
            return Template("portal/_ticket_rows.html", context=context)
        return render_page(request, "portal/tickets.html", **context)

    @get("/new", name="ticket_new")
    async def new_ticket(self, request: Request, product: FromQuery[str] = "") -> Template:
        if not tickets.can_open(request.user):
            raise PermissionDeniedException()
        context = await self._form_context(request, {"product": product}, {})
        return render_page(request, "portal/tickets_new.html", **context)

    @post(name="ticket_create")
    async def create_ticket(self, request: Request) -> Response | Template:
        if not tickets.can_open(request.user):
            raise PermissionDeniedException()
        form: dict[str, Any] = {}
        try:
            form = await read_form(request, TICKET_FIELDS)
            ticket = await tickets.open_ticket(request.user, form)
        except ValidationFailed as failed:
            form = failed.values or form
            context = await self._form_context(request, form, failed.errors)
            return form_response(
                request, "portal/tickets_new.html", "portal/_ticket_form.html", 422, **context
            )
        except NotAllowed:
            raise PermissionDeniedException() from None
        return redirect(request, f"/portal/tickets/{ticket.id}")

    @get("/{ticket_id:int}", name="ticket")
    async def show_ticket(self, request: Request, ticket_id: FromPath[int]) -> Template:
        ticket = await self._ticket(request, ticket_id)
        context = await self._ticket_context(request, ticket, {}, {})
        return render_page(request, "portal/tickets_detail.html", **context)

    @post("/{ticket_id:int}/messages", name="ticket_reply")
    async def reply(self, request: Request, ticket_id: FromPath[int]) -> Response | Template:
        ticket = await self._ticket(request, ticket_id)
        if not tickets.can_reply(request.user, ticket):
            raise PermissionDeniedException()
        form: dict[str, Any] = {}
        try:
            form = await read_form(request, ("body",))
            await tickets.add_message(request.user, ticket, form.get("body", ""))
        except ValidationFailed as failed:
            form = failed.values or form
            context = await self._ticket_context(request, ticket, form, failed.errors)
            return form_response(
                request, "portal/tickets_detail.html", "portal/_ticket_reply.html", 422, **context
            )
        except NotAllowed:
            raise PermissionDeniedException() from None
        return redirect(request, f"/portal/tickets/{ticket.id}")

    @post("/{ticket_id:int}/resolve", name="ticket_resolve")
    async def resolve(self, request: Request, ticket_id: FromPath[int]) -> Response:
        """The customer's "Merk som løst"; a reply afterwards reopens the ticket."""
        ticket = await self._ticket(request, ticket_id)
        try:
            await tickets.resolve_by_customer(request.user, ticket)
        except NotAllowed:
            raise PermissionDeniedException() from None
        return redirect(request, f"/portal/tickets/{ticket.id}")

    async def _ticket(self, request: Request, ticket_id: int) -> Ticket:
        """The company's own ticket; another company's is not found (not forbidden)."""
        try:
            return await tickets.get_ticket(request.user, ticket_id)
        except NotAllowed:
            raise NotFoundException() from None

    async def _form_context(self, request: Request, form: dict, errors: dict) -> dict[str, Any]:
        offer = await catalog.current_offer()
        return {
            "products": offer.products,
            "product_names": {p.code: p.name for p in offer.products},
            "uncovered": await coverage.billed_hourly_products(request.user.company, clock.today()),
            "hourly_rate_ore": offer.prices.hourly_rate_ore if offer.prices else None,
            "form": form,
            "errors": errors,
        }

    async def _ticket_context(
        self, request: Request, ticket: Ticket, form: dict, errors: dict
    ) -> dict[str, Any]:
        messages = await tickets.thread(ticket, include_internal=False)
        names = await catalog.product_names([ticket.product_code])
        return {
            "ticket": ticket,
            "number": tickets.ticket_number(ticket.id),
            "status_label": tickets.STATUS_LABELS.get(ticket.status, ticket.status),
            "product_name": names[0] if names else ticket.product_code,
            "messages": messages,
            "staff_roles": STAFF_ROLES,
            "first_look": tickets.pending_first_look(ticket, messages, clock.now()),
            "entries": await tickets.time_entries(ticket),
            "can_reply": tickets.can_reply(request.user, ticket),
            "can_resolve": tickets.can_resolve(request.user, ticket),
            "form": form,
            "errors": errors,
        }
