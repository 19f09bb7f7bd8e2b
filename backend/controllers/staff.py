"""The reseller's own console (technicians and admins): the ticket queue, a ticket with its
thread and time, opening a ticket for a company, and the companies."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Response, Template

from backend.services import (
    account,
    billing,
    catalog,
    clock,
    companies,
    coverage,
    ledger,
    tickets,
    validation,
)
from backend.services.errors import NotAllowed, ValidationFailed
from backend.tables import Channel, Company, Role, Ticket
from backend.web.forms import read_form
from backend.web.security import requires_staff
from backend.web.templating import form_response, page, redirect, wants_fragment

TICKET_FIELDS = ("company", "product", "subject", "description", "channel")
RECENT = 20


def _targets(request: Request, element_id: str) -> bool:
    """Whether htmx asks for one region: HX-Target is "queue-rows" in htmx 2, "div#queue-rows"
    in htmx 4."""
    target = request.headers.get("hx-target") or ""
    return wants_fragment(request) and target.rsplit("#", 1)[-1] == element_id


class StaffController(Controller):
    path = "/staff"
    guards = [requires_staff]  # noqa: RUF012

    # The queue

    @get(name="staff_queue")
    async def queue(
        self,
        request: Request,
        q: FromQuery[str] = "",
        status: FromQuery[str] = "",
        company: FromQuery[str] = "",
        product: FromQuery[str] = "",
    ) -> Template:
        """Tickets, the longest waiting first. The filter form swaps only the rows region."""
        filters = {"q": q, "status": status, "company": company, "product": product}
        result = await tickets.search(
            company_id=validation.record_id(company),
            q=q,
            status=status,
            product=product,
            page=validation.record_id(request.query_params.get("page", "")) or 1,
            oldest_waiting_first=True,
        )
        offer = await catalog.current_offer()
        context = {
            "filters": filters,
            "result": result,
            "product_names": {p.code: p.name for p in offer.products},
            "status_labels": tickets.STATUS_LABELS,
        }
        if _targets(request, "queue-rows"):
            return Template("staff/_queue_rows.html", context=context)
        return page(
            request,
            "staff/queue.html",
            companies=await companies.list_companies(),
            products=offer.products,
            **context,
        )

    # One ticket

    @get("/tickets/{ticket_id:int}", name="staff_ticket")
    async def show_ticket(self, request: Request, ticket_id: FromPath[int]) -> Template:
        ticket = await self._ticket(request, ticket_id)
        return page(request, "staff/ticket.html", **await self._ticket_context(ticket))

    @post("/tickets/{ticket_id:int}/messages", name="staff_ticket_message")
    async def add_message(self, request: Request, ticket_id: FromPath[int]) -> Response | Template:
        ticket = await self._ticket(request, ticket_id)
        form: dict[str, Any] = {}
        try:
            form = await read_form(request, ("body", "internal"))
            internal = form.get("internal") == "1"
            await tickets.add_message(request.user, ticket, form.get("body", ""), internal=internal)
        except ValidationFailed as failed:
            form = failed.values or form
            return await self._ticket_form(
                request, ticket, "_message_form", message_form=form, message_errors=failed.errors
            )
        return redirect(request, _ticket_url(ticket.id))

    @post("/tickets/{ticket_id:int}/status", name="staff_ticket_status")
    async def set_status(self, request: Request, ticket_id: FromPath[int]) -> Response | Template:
        ticket = await self._ticket(request, ticket_id)
        form: dict[str, Any] = {}
        try:
            form = await read_form(request, ("status",))
            await tickets.set_status(request.user, ticket, form.get("status", ""))
        except ValidationFailed as failed:
            form = failed.values or form
            return await self._ticket_form(
                request, ticket, "_status_form", status_form=form, status_errors=failed.errors
            )
        return redirect(request, _ticket_url(ticket.id))

    @post("/tickets/{ticket_id:int}/time", name="staff_ticket_time")
    async def log_time(self, request: Request, ticket_id: FromPath[int]) -> Response | Template:
        ticket = await self._ticket(request, ticket_id)
        form: dict[str, Any] = {}
        try:
            form = await read_form(request, tickets.TIME_FIELDS)
            await tickets.log_time(request.user, ticket, form)
        except ValidationFailed as failed:
            form = failed.values or form
            # A fresh key: nothing was logged, and a tampered key must not come back.
            form = {**form, "idempotency_key": tickets.new_idempotency_key()}
            return await self._ticket_form(
                request, ticket, "_time_form", time_form=form, time_errors=failed.errors
            )
        return redirect(request, _ticket_url(ticket.id))

    @post("/time-entries/{entry_id:int}/void", name="staff_time_entry_void")
    async def void_time_entry(
        self, request: Request, entry_id: FromPath[int]
    ) -> Response | Template:
        try:
            entry = await tickets.get_time_entry(request.user, entry_id)
        except NotAllowed:
            raise NotFoundException() from None
        ticket = await self._ticket(request, entry.ticket)
        form: dict[str, Any] = {}
        try:
            form = await read_form(request, ("reason",))
            await coverage.void_time_entry(
                entry.id, request.user, form.get("reason", ""), request.app.state.payments
            )
        except ValidationFailed as failed:
            form = failed.values or form
            context = await self._ticket_context(
                ticket, void_entry_id=entry.id, void_form=form, void_errors=failed.errors
            )
            # The fragment needs the entry it belongs to.
            context["entry"] = next(e for e in context["entries"] if e["id"] == entry.id)
            return form_response(
                request, "staff/ticket.html", "staff/_void_form.html", 422, **context
            )
        return redirect(request, _ticket_url(ticket.id))

    # A ticket on a company's behalf (phone, mail)

    @get("/tickets/new", name="staff_ticket_new")
    async def new_ticket(self, request: Request, company: FromQuery[str] = "") -> Template:
        form = {"company": company, "channel": Channel.phone.value}
        return page(request, "staff/new_ticket.html", **await self._new_ticket_context(form, {}))

    @post("/tickets", name="staff_ticket_create")
    async def create_ticket(self, request: Request) -> Response | Template:
        form: dict[str, Any] = {}
        try:
            form = await read_form(request, TICKET_FIELDS)
            ticket = await tickets.open_ticket(
                request.user,
                form,
                company_id=validation.record_id(form.get("company", "")),
                channel=form.get("channel", ""),
            )
        except ValidationFailed as failed:
            form = failed.values or form
            context = await self._new_ticket_context(form, failed.errors)
            return form_response(
                request, "staff/new_ticket.html", "staff/_new_ticket_form.html", 422, **context
            )
        return redirect(request, _ticket_url(ticket.id))

    # Companies

    @get("/companies", name="staff_companies")
    async def list_companies(self, request: Request) -> Template:
        return page(request, "staff/companies.html", companies=await companies.list_companies())

    @get("/companies/{company_id:int}", name="staff_company")
    async def show_company(self, request: Request, company_id: FromPath[int]) -> Template:
        company = await self._company(company_id)
        return page(request, "staff/company.html", **await self._company_context(company))

    @post("/companies/{company_id:int}/adjustments", name="staff_company_adjust")
    async def adjust_minutes(
        self, request: Request, company_id: FromPath[int]
    ) -> Response | Template:
        """An admin's manual adjustment of the time account, with a reason (SPEC §1, §5)."""
        if request.user.role != Role.admin.value:
            raise PermissionDeniedException()
        company = await self._company(company_id)
        form: dict[str, Any] = {}
        try:
            form = await read_form(
                request, ("minutes", "reason", "idempotency_key"), lists=("products",)
            )
            minutes, reason = ledger.parse_adjustment(
                form.get("minutes", ""), form.get("reason", "")
            )
            # The form's key makes a double submit one adjustment.
            key = form.get("idempotency_key") or tickets.new_idempotency_key()
            await ledger.adjust(
                company_id=company.id,
                minutes=minutes,
                reason=reason,
                user_id=request.user.id,
                key=f"adjust:{company.id}:{key}",
                today=clock.today(),
                product_codes=form["products"],
            )
        except ValidationFailed as failed:
            form = failed.values or form
            context = await self._company_context(company)
            context.update(adjust_form=form, adjust_errors=failed.errors)
            return form_response(
                request, "staff/company.html", "staff/_adjust_form.html", 422, **context
            )
        return redirect(request, f"/staff/companies/{company.id}")

    # Helpers

    async def _company(self, company_id: int) -> Company:
        try:
            return await companies.get_company(company_id)
        except NotAllowed:
            raise NotFoundException() from None

    async def _company_context(self, company: Company) -> dict[str, Any]:
        return {
            "company": company,
            "account": await account.account_summary(company.id),
            "superuser": await companies.get_superuser(company.id),
            "entries": await tickets.time_log(company_id=company.id, limit=RECENT),
            "ledger_entries": await ledger.recent_entries(company.id, limit=RECENT),
            "offer": await catalog.current_offer(),
            "review_orders": await billing.orders_needing_review(company.id),
            "adjust_form": {
                "idempotency_key": tickets.new_idempotency_key(),
                "products": await coverage.adjustment_products(company.id, clock.today()),
            },
            "adjust_errors": {},
        }

    async def _ticket(self, request: Request, ticket_id: int) -> Ticket:
        try:
            return await tickets.get_ticket(request.user, ticket_id)
        except NotAllowed:
            raise NotFoundException() from None

    async def _ticket_context(self, ticket: Ticket, **forms: Any) -> dict[str, Any]:
        """Everything the ticket page shows; each form empty unless given (with its errors)."""
        offer = await catalog.current_offer()
        context: dict[str, Any] = {
            "ticket": ticket,
            "number": tickets.ticket_number(ticket.id),
            "company": await companies.get_company(ticket.company),
            "product_names": {p.code: p.name for p in offer.products},
            "status_labels": tickets.STATUS_LABELS,
            "messages": await tickets.thread(ticket, include_internal=True),
            "entries": await tickets.time_log(ticket_id=ticket.id),
            "message_form": {},
            "message_errors": {},
            "status_form": {"status": ticket.status},
            "status_errors": {},
            "time_form": {
                "performed_on": clock.today().isoformat(),
                "channel": ticket.channel,
                "idempotency_key": tickets.new_idempotency_key(),
            },
            "time_errors": {},
            "today": clock.today().isoformat(),
            "opened_on": clock.oslo_date(ticket.created_at).isoformat(),
            "void_entry_id": None,
            "void_form": {},
            "void_errors": {},
        }
        context.update(forms)
        return context

    async def _ticket_form(
        self, request: Request, ticket: Ticket, fragment: str, **forms: Any
    ) -> Template:
        """One of the ticket page's forms again, with its messages (422)."""
        context = await self._ticket_context(ticket, **forms)
        return form_response(request, "staff/ticket.html", f"staff/{fragment}.html", 422, **context)

    async def _new_ticket_context(self, form: dict[str, Any], errors: dict) -> dict[str, Any]:
        return {
            "companies": await companies.list_companies(),
            "products": (await catalog.current_offer()).products,
            "channels": tickets.STAFF_CHANNELS,
            "form": form,
            "errors": errors,
        }


def _ticket_url(ticket_id: int) -> str:
    return f"/staff/tickets/{ticket_id}"
