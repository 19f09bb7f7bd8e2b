"""The reseller's own console (technicians and admins): the ticket queue, a ticket with its
thread and time, opening a ticket for a company, and the companies."""

from __future__ import annotations

import datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import File, Response, Template

from backend.services import (
    attachments,
    audit,
    catalog,
    clock,
    companies,
    coverage,
    inbound_mail,
    ledger,
    orders,
    overview,
    policy,
    tickets,
)
from backend.tables import Channel, Company, Ticket, User
from backend.web.errors import FormView
from backend.web.events import BALANCE_CHANGED, TICKETS_CHANGED
from backend.web.files import attachment_response
from backend.web.forms import (
    form_operation,
    read_form,
    read_query,
    read_values,
    read_values_and_files,
)
from backend.web.guards import allowed
from backend.web.templating import asks_for_region, page, redirect

RECENT = 20


async def _ticket_context(user: User, ticket: Ticket, **forms: Any) -> dict[str, Any]:
    """Everything the ticket page shows; each form empty unless given (with its errors)."""
    offer = await catalog.current_offer()
    context: dict[str, Any] = {
        "ticket": ticket,
        "number": tickets.ticket_number(ticket.id),
        "company": await companies.get_company(ticket.company),
        "product_names": {p.code: p.name for p in offer.products},
        "messages": await tickets.thread(ticket, include_internal=True),
        "mails": await inbound_mail.mails_of_ticket(user, ticket.id),
        "attachments": await attachments.for_ticket(ticket, include_internal=True),
        "entries": await tickets.time_log(ticket_id=ticket.id),
        "message_form": {},
        "message_errors": {},
        "status_form": {"status": ticket.status},
        "product_form": {"product": ticket.product_code},
        "product_errors": {},
        "products": offer.products,
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


def _ticket_form(fragment: str, name: str) -> FormView:
    """One of the ticket page's forms (`name`_form, `name`_errors in its context)."""

    async def context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
        ticket = await tickets.get_ticket(request.user, request.path_params["ticket_id"])
        if name == "time":
            # A fresh key: nothing was logged, and a tampered key must not come back.
            values = {**values, "idempotency_key": tickets.new_idempotency_key()}
        return await _ticket_context(
            request.user, ticket, **{f"{name}_form": values, f"{name}_errors": errors}
        )

    return FormView("staff/ticket.html", f"staff/{fragment}.html", context)


async def _void_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    entry = await tickets.get_time_entry(request.user, request.path_params["entry_id"])
    ticket = await tickets.get_ticket(request.user, entry.ticket)
    context = await _ticket_context(
        request.user, ticket, void_entry_id=entry.id, void_form=values, void_errors=errors
    )
    # The fragment needs the entry it belongs to.
    context["entry"] = next(e for e in context["entries"] if e["id"] == entry.id)
    return context


async def _new_ticket_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    return {
        "companies": await companies.list_companies(),
        "products": (await catalog.current_offer()).products,
        "channels": tickets.STAFF_CHANNELS,
        "form": values,
        "errors": errors,
    }


async def _company_context(company: Company) -> dict[str, Any]:
    return {
        "company": company,
        "account": await overview.account_summary(company.id),
        "superuser": await companies.get_superuser(company.id),
        "entries": await tickets.time_log(company_id=company.id, limit=RECENT),
        "ledger_entries": await ledger.recent_entries(company.id, limit=RECENT),
        "offer": await catalog.current_offer(),
        "review_orders": await orders.orders_needing_review(company.id),
        "adjust_form": {
            "idempotency_key": tickets.new_idempotency_key(),
            "products": await coverage.adjustment_products(company.id, clock.today()),
        },
        "adjust_errors": {},
        "members": await companies.active_members(company.id),
        "audit": await audit.entries(audit.AuditFilter(company=company.id)),
        "kind_labels": audit.KIND_LABELS,
        "admin_forms": {"edit": _edit_values(company)},
        "admin_errors": {},
        "extend_form": {"idempotency_key": tickets.new_idempotency_key()},
        "extend_errors": {},
    }


def _edit_values(company: Company) -> dict[str, str]:
    return {
        "company_name": company.name,
        "org_number": company.org_number,
        "address": company.address,
        "postal_code": company.postal_code,
        "city": company.city,
    }


# Which of the administration forms a path's last segment is (staff/_company_admin.html).
_ADMIN_FORM_OF = {
    "details": "edit",
    "superuser": "superuser",
    "deactivate": "status",
    "reactivate": "status",
}


async def _company_admin_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    context = await _company_context(await companies.get_company(request.path_params["company_id"]))
    name = _ADMIN_FORM_OF[request.url.path.rstrip("/").rsplit("/", 1)[-1]]
    context["admin_forms"] = {**context["admin_forms"], name: values}
    context["admin_errors"] = {name: errors}
    return context


async def _adjust_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    context = await _company_context(await companies.get_company(request.path_params["company_id"]))
    context.update(adjust_form=values, adjust_errors=errors)
    return context


async def _extend_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    context = await _company_context(await companies.get_company(request.path_params["company_id"]))
    context.update(extend_form=values, extend_errors=errors)
    return context


async def _inbox_mail_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    mail = await inbound_mail.get_mail(request.user, request.path_params["mail_id"])
    return {
        "mail": mail,
        "reason_labels": inbound_mail.REASON_LABELS,
        "companies": await companies.list_companies(),
        "form": values or {"company": str(mail.company or "")},
        "errors": errors,
    }


MESSAGE_FORM = _ticket_form("_message_form", "message")
STATUS_FORM = _ticket_form("_status_form", "status")
PRODUCT_FORM = _ticket_form("_product_form", "product")
TIME_FORM = _ticket_form("_time_form", "time")
VOID_FORM = FormView("staff/ticket.html", "staff/_void_form.html", _void_context)
NEW_TICKET_FORM = FormView(
    "staff/new_ticket.html", "staff/_new_ticket_form.html", _new_ticket_context
)
INBOX_FORM = FormView("staff/inbox_mail.html", "staff/_inbox_actions.html", _inbox_mail_context)
ADJUST_FORM = FormView("staff/company.html", "staff/_adjust_form.html", _adjust_context)
COMPANY_ADMIN_FORM = FormView(
    "staff/company.html", "staff/_company_admin.html", _company_admin_context
)
EXTEND_FORM = FormView("staff/company.html", "staff/_extend_form.html", _extend_context)


class StaffController(Controller):
    path = "/staff"
    guards = [allowed("work_queue")]  # noqa: RUF012

    # The queue

    @get(name="staff_queue")
    async def queue(self, request: Request) -> Template:
        """Tickets, the longest waiting first. The filter form swaps only the rows region."""
        found_by = read_query(request, tickets.QueueFilter)
        filters = {
            name: request.query_params.get(name, "")
            for name in ("q", "status", "company", "product")
        }
        result = await tickets.queue(
            company_id=found_by.company or None,
            q=found_by.q,
            status=found_by.status,
            product=found_by.product,
            page=found_by.page,
        )
        context = {"filters": filters, "result": result}
        if asks_for_region(request, "queue-rows"):
            return Template("staff/_queue_rows.html", context=context)
        return page(
            request,
            "staff/queue.html",
            companies=await companies.list_companies(),
            products=result.offer.products,
            **context,
        )

    # One ticket

    @get("/tickets/{ticket_id:int}", name="staff_ticket")
    async def show_ticket(self, request: Request, ticket_id: FromPath[int]) -> Template:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        return page(request, "staff/ticket.html", **await _ticket_context(request.user, ticket))

    @post(
        "/tickets/{ticket_id:int}/messages",
        name="staff_ticket_message",
        operation_class=form_operation(tickets.Reply, files=True),
        opt={"form": MESSAGE_FORM},
        request_max_body_size=attachments.REQUEST_BODY_LIMIT,
    )
    async def add_message(self, request: Request, ticket_id: FromPath[int]) -> Response:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        values, files = await read_values_and_files(request, tickets.Reply)
        await tickets.add_message(request.user, ticket, values, files=files)
        return redirect(request, _ticket_url(ticket.id), TICKETS_CHANGED)

    @get(
        "/tickets/{ticket_id:int}/attachments/{attachment_id:int}",
        name="staff_ticket_attachment",
    )
    async def download(
        self, request: Request, ticket_id: FromPath[int], attachment_id: FromPath[int]
    ) -> File:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        attachment, path = await attachments.get_for(request.user, ticket, attachment_id)
        return attachment_response(attachment, path)

    @get(
        "/tickets/{ticket_id:int}/attachments/{attachment_id:int}/image",
        name="staff_ticket_attachment_image",
    )
    async def image(
        self, request: Request, ticket_id: FromPath[int], attachment_id: FromPath[int]
    ) -> File:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        attachment, path = await attachments.get_for(request.user, ticket, attachment_id)
        return attachment_response(attachment, path, inline=True)

    @post(
        "/tickets/{ticket_id:int}/status",
        name="staff_ticket_status",
        operation_class=form_operation(tickets.StatusForm),
        opt={"form": STATUS_FORM},
    )
    async def set_status(self, request: Request, ticket_id: FromPath[int]) -> Response:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        form = await read_form(request, tickets.StatusForm)
        await tickets.set_status(request.user, ticket, form.status)
        return redirect(request, _ticket_url(ticket.id), TICKETS_CHANGED)

    @post(
        "/tickets/{ticket_id:int}/product",
        name="staff_ticket_product",
        operation_class=form_operation(tickets.ProductForm),
        opt={"form": PRODUCT_FORM},
    )
    async def set_product(self, request: Request, ticket_id: FromPath[int]) -> Response:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        await tickets.set_product(
            request.user, ticket, await read_values(request, tickets.ProductForm)
        )
        return redirect(request, _ticket_url(ticket.id), TICKETS_CHANGED)

    @post(
        "/tickets/{ticket_id:int}/time",
        name="staff_ticket_time",
        operation_class=form_operation(tickets.TimeForm),
        opt={"form": TIME_FORM},
    )
    async def log_time(self, request: Request, ticket_id: FromPath[int]) -> Response:
        ticket = await tickets.get_ticket(request.user, ticket_id)
        await tickets.log_time_from_form(
            request.user, ticket, await read_values(request, tickets.TimeForm)
        )
        return redirect(request, _ticket_url(ticket.id), BALANCE_CHANGED, TICKETS_CHANGED)

    @post(
        "/time-entries/{entry_id:int}/void",
        name="staff_time_entry_void",
        operation_class=form_operation(coverage.VoidForm),
        opt={"form": VOID_FORM},
    )
    async def void_time_entry(self, request: Request, entry_id: FromPath[int]) -> Response:
        entry = await tickets.get_time_entry(request.user, entry_id)
        form = await read_form(request, coverage.VoidForm)
        await coverage.void_time_entry(
            entry.id, request.user, form.reason, request.app.state.payments
        )
        return redirect(request, _ticket_url(entry.ticket), BALANCE_CHANGED, TICKETS_CHANGED)

    # A ticket on a company's behalf (phone, mail)

    @get("/tickets/new", name="staff_ticket_new", guards=[allowed("open_ticket_for")])
    async def new_ticket(self, request: Request, company: FromQuery[str] = "") -> Template:
        form = {"company": company, "channel": Channel.phone.value}
        return page(
            request, "staff/new_ticket.html", **await _new_ticket_context(request, form, {})
        )

    @post(
        "/tickets",
        name="staff_ticket_create",
        operation_class=form_operation(tickets.NewTicketFor),
        guards=[allowed("open_ticket_for")],
        opt={"form": NEW_TICKET_FORM},
    )
    async def create_ticket(self, request: Request) -> Response:
        values = await read_values(request, tickets.NewTicketFor)
        ticket = await tickets.open_ticket(request.user, values)
        return redirect(request, _ticket_url(ticket.id), TICKETS_CHANGED)

    # Mail to the support address that no ticket took: "Ukjent avsender" and the rest

    @get("/inbox", name="staff_inbox", guards=[allowed("handle_inbox")])
    async def inbox(self, request: Request) -> Template:
        return page(
            request,
            "staff/inbox.html",
            mails=await inbound_mail.inbox(request.user),
            reason_labels=inbound_mail.REASON_LABELS,
        )

    @get("/inbox/{mail_id:int}", name="staff_inbox_mail", guards=[allowed("handle_inbox")])
    async def show_inbox_mail(self, request: Request, mail_id: FromPath[int]) -> Template:
        return page(request, "staff/inbox_mail.html", **await _inbox_mail_context(request, {}, {}))

    @get("/inbox/{mail_id:int}/raw", name="staff_inbox_raw", guards=[allowed("handle_inbox")])
    async def raw_inbox_mail(self, request: Request, mail_id: FromPath[int]) -> Response:
        """The mail exactly as it came, to save and open in a mail program; never shown."""
        mail = await inbound_mail.get_mail(request.user, mail_id)
        return Response(
            bytes(mail.raw),
            media_type="message/rfc822",
            headers={
                "content-disposition": f'attachment; filename="mail-{mail.id}.eml"',
                "x-content-type-options": "nosniff",
            },
        )

    @post(
        "/inbox/{mail_id:int}/attach",
        name="staff_inbox_attach",
        operation_class=form_operation(inbound_mail.AttachForm),
        guards=[allowed("handle_inbox")],
        opt={"form": INBOX_FORM},
    )
    async def attach_inbox_mail(self, request: Request, mail_id: FromPath[int]) -> Response:
        values = await read_values(request, inbound_mail.AttachForm)
        ticket = await inbound_mail.attach(request.user, mail_id, values)
        return redirect(request, _ticket_url(ticket.id), TICKETS_CHANGED)

    @post(
        "/inbox/{mail_id:int}/discard",
        name="staff_inbox_discard",
        guards=[allowed("handle_inbox")],
        opt={"form": INBOX_FORM},
    )
    async def discard_inbox_mail(self, request: Request, mail_id: FromPath[int]) -> Response:
        await inbound_mail.discard(request.user, mail_id)
        return redirect(request, "/staff/inbox")

    # Companies

    @get("/companies", name="staff_companies", guards=[allowed("view_companies")])
    async def list_companies(self, request: Request) -> Template:
        """Every company, or those an admin searched for (name, org.nr., a user's e-mail)."""
        search = ""
        if policy.can(request.user, "manage_companies"):
            search = read_query(request, companies.CompanySearch).q
        return page(
            request,
            "staff/companies.html",
            companies=await companies.list_companies(search),
            search=search,
        )

    @get("/companies/{company_id:int}", name="staff_company", guards=[allowed("view_companies")])
    async def show_company(self, request: Request, company_id: FromPath[int]) -> Template:
        company = await companies.get_company(company_id)
        return page(request, "staff/company.html", **await _company_context(company))

    @post(
        "/companies/{company_id:int}/adjustments",
        name="staff_company_adjust",
        operation_class=form_operation(ledger.Adjustment),
        guards=[allowed("adjust_minutes")],
        opt={"form": ADJUST_FORM},
    )
    async def adjust_minutes(self, request: Request, company_id: FromPath[int]) -> Response:
        """An admin's manual adjustment of the time account, with a reason (SPEC §1, §5)."""
        company = await companies.get_company(company_id)
        form = await read_form(request, ledger.Adjustment)
        # The form's key makes a double submit one adjustment.
        key = form.idempotency_key or tickets.new_idempotency_key()
        await ledger.adjust(
            company_id=company.id,
            minutes=form.minutes,
            reason=form.reason,
            user_id=request.user.id,
            key=f"adjust:{company.id}:{key}",
            today=clock.today(),
            product_codes=form.products,
        )
        return redirect(request, f"/staff/companies/{company.id}", BALANCE_CHANGED)

    # The back office's company actions (issue 12), admins only, each with a reason.

    @post(
        "/companies/{company_id:int}/details",
        name="staff_company_edit",
        operation_class=form_operation(companies.AdminCompanyDetails),
        guards=[allowed("manage_companies")],
        opt={"form": COMPANY_ADMIN_FORM},
    )
    async def edit_company(self, request: Request, company_id: FromPath[int]) -> Response:
        await companies.get_company(company_id)  # 404 before the form's 422
        form = await read_form(request, companies.AdminCompanyDetails)
        await companies.edit_company(request.user, company_id, form)
        return redirect(request, f"/staff/companies/{company_id}")

    @post(
        "/companies/{company_id:int}/superuser",
        name="staff_company_superuser",
        operation_class=form_operation(companies.SuperuserMove),
        guards=[allowed("manage_companies")],
        opt={"form": COMPANY_ADMIN_FORM},
    )
    async def move_superuser(self, request: Request, company_id: FromPath[int]) -> Response:
        await companies.get_company(company_id)
        form = await read_form(request, companies.SuperuserMove)
        await companies.move_superuser(request.user, company_id, form)
        return redirect(request, f"/staff/companies/{company_id}")

    @post(
        "/companies/{company_id:int}/deactivate",
        name="staff_company_deactivate",
        operation_class=form_operation(companies.CompanyChange),
        guards=[allowed("manage_companies")],
        opt={"form": COMPANY_ADMIN_FORM},
    )
    async def deactivate_company(self, request: Request, company_id: FromPath[int]) -> Response:
        await companies.get_company(company_id)
        form = await read_form(request, companies.CompanyChange)
        await companies.set_active(request.user, company_id, False, form)
        return redirect(request, f"/staff/companies/{company_id}")

    @post(
        "/companies/{company_id:int}/reactivate",
        name="staff_company_reactivate",
        operation_class=form_operation(companies.CompanyChange),
        guards=[allowed("manage_companies")],
        opt={"form": COMPANY_ADMIN_FORM},
    )
    async def reactivate_company(self, request: Request, company_id: FromPath[int]) -> Response:
        await companies.get_company(company_id)
        form = await read_form(request, companies.CompanyChange)
        await companies.set_active(request.user, company_id, True, form)
        return redirect(request, f"/staff/companies/{company_id}")

    @post(
        "/companies/{company_id:int}/expiry-extensions",
        name="staff_company_extend_expiry",
        operation_class=form_operation(ledger.ExpiryExtension),
        guards=[allowed("extend_expiry")],
        opt={"form": EXTEND_FORM},
    )
    async def extend_expiry(self, request: Request, company_id: FromPath[int]) -> Response:
        """An admin moves a lot's expiry later, with a reason, as a ledger entry (SPEC §5)."""
        company = await companies.get_company(company_id)
        form = await read_form(request, ledger.ExpiryExtension)
        # The form's key makes a double submit one extension.
        key = form.idempotency_key or tickets.new_idempotency_key()
        await ledger.extend_expiry(
            company_id=company.id,
            lot_id=form.lot,
            expires_on=ledger.expires_after(datetime.date.fromisoformat(form.last_day)),
            reason=form.reason,
            user_id=request.user.id,
            key=f"extend:{company.id}:{key}",
            today=clock.today(),
        )
        return redirect(request, f"/staff/companies/{company.id}", BALANCE_CHANGED)


def _ticket_url(ticket_id: int) -> str:
    return f"/staff/tickets/{ticket_id}"
