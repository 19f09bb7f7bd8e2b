"""Buying: the plan and top-up pages, placing an order, and the order (success) page."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath
from litestar.response import Response, Template

from backend.services import (
    agreements,
    catalog,
    charges,
    clock,
    ledger,
    orders,
    pricing,
    product_additions,
)
from backend.services.money import mva_ore
from backend.services.payments import Payments, PaymentsError
from backend.tables import Order, OrderKind
from backend.web.errors import FormView
from backend.web.events import BALANCE_CHANGED, announce
from backend.web.forms import form_operation, read_query, read_values
from backend.web.guards import allowed
from backend.web.receipt_pdf import filename as pdf_filename
from backend.web.receipt_pdf import receipt_pdf
from backend.web.templating import asks_for_region, page, redirect

PRICE_REGION = "price-preview"


def _payments(request: Request) -> Payments:
    return request.app.state.payments


async def _plan_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    company_id = request.user.company
    today = clock.today()
    starts_on, ends_on = await agreements.next_plan_period(company_id, today)
    offer = await catalog.current_offer()
    return {
        "offer": offer,
        "plans": await agreements.current_and_future_plans(company_id, today),
        "today": today,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "form": values,
        "errors": errors,
        **_preview(offer, OrderKind.plan.value, values),
    }


async def _topup_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    company_id = request.user.company
    lots, offer = await ledger.open_lots_and_offer(company_id, clock.today())
    current = sorted({code for lot in lots for code in lot.product_codes})
    form = values or {"products": current, "hours": "5"}
    return {
        "offer": offer,
        "lots": lots,
        "expires_on": pricing.topup_expires_on(clock.now()),
        "form": form,
        "errors": errors,
        **_preview(offer, OrderKind.topup.value, form),
    }


def _preview(offer: catalog.Offer, kind: str, form: dict[str, Any]) -> dict[str, Any]:
    """The price the form would pay now (or why none yet), as the form's context."""
    quote, problem = pricing.preview(offer, kind, form.get("hours", ""), form.get("products", []))
    return {"quote": quote, "price_problem": problem}


async def _plan_addition_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    """The plan's "add products" form: the company's own period in force today. The price
    follows what the form names; a period that is not that one gets no price."""
    choice = await product_additions.plan_choice(request.user.company, clock.today())
    asked = str(values.get("agreement") or "")
    named = choice if choice and asked in ("", str(choice.plan.id)) else None
    form = values or {"products": []}
    quote, problem = product_additions.preview(named, form.get("products", []))
    return {
        "choice": choice,
        "covered_names": ", ".join(await catalog.product_names(choice.plan.product_codes))
        if choice
        else "",
        "offer": choice.offer if choice else None,
        "form": form,
        "errors": errors,
        "quote": quote,
        "price_problem": problem,
    }


async def _charges_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    company_id = request.user.company
    amount = await charges.outstanding_ore(company_id)
    return {
        "charges": await charges.charges_of(company_id),
        "outstanding_ore": amount,
        "outstanding_mva_ore": mva_ore(amount),
        "errors": errors,
    }


async def _order_context(request: Request, order: Order, error: str = "") -> dict[str, Any]:
    check_url = f"/portal/orders/{order.id}"
    if order.stripe_session_id:
        check_url += f"?session_id={order.stripe_session_id}"
    return {
        "order": order,
        "description": await orders.describe(order),
        "agreement": await orders.agreement_for(order),
        "lot": await orders.lot_for(order),
        "final": order.status in orders.FINAL_STATUSES,
        "form_path": orders.form_path(order.kind),
        "check_url": check_url,
        "error": error,
    }


async def _order_problem_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    order = await orders.get_order(request.user, request.path_params["order_id"])
    return await _order_context(request, order, error=next(iter(errors.values()), ""))


PLAN_FORM = FormView("portal/plan.html", "portal/_plan_form.html", _plan_context)
PLAN_ADDITION_FORM = FormView(
    "portal/plan_products.html", "portal/_plan_products_form.html", _plan_addition_context
)
TOPUP_FORM = FormView("portal/topup.html", "portal/_topup_form.html", _topup_context)
CHARGES_FORM = FormView("portal/charges.html", "portal/_charges_pay.html", _charges_context)
ORDER_STATUS = FormView("portal/order.html", "portal/_order_status.html", _order_problem_context)


def _order_form(values: dict[str, Any]) -> FormView:
    """The form the order came from, by its kind."""
    kind = values.get("kind")
    if kind == OrderKind.charges.value:
        return CHARGES_FORM
    if kind == OrderKind.plan_addition.value:
        return PLAN_ADDITION_FORM
    return TOPUP_FORM if kind == OrderKind.topup.value else PLAN_FORM


class OrdersController(Controller):
    path = "/portal"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get("/plan", name="plan")
    async def show_plan(self, request: Request) -> Template:
        return page(request, "portal/plan.html", **await _plan_context(request, {}, {}))

    @get("/plan/products", name="plan_products", guards=[allowed("add_products")])
    async def show_plan_products(self, request: Request) -> Template:
        """Add products to the plan in force, for the days left of its period (SPEC §2)."""
        context = await _plan_addition_context(request, {}, {})
        return page(request, "portal/plan_products.html", **context)

    @get("/topup", name="topup")
    async def show_topup(self, request: Request) -> Template:
        return page(request, "portal/topup.html", **await _topup_context(request, {}, {}))

    @post(
        "/orders",
        name="order_create",
        operation_class=form_operation(orders.OrderForm),
        guards=[allowed("buy")],
        opt={"form": _order_form},
    )
    async def create_order(self, request: Request) -> Response:
        values = await read_values(request, orders.OrderForm)
        order = await orders.place_order(request.user, values, _payments(request))
        url = await orders.start_checkout(
            order, _payments(request), request.app.state.settings.base_url
        )
        return redirect(request, url, BALANCE_CHANGED)  # a new order among the latest

    @get("/price", name="price_preview")
    async def price_preview(self, request: Request) -> Template:
        """The plan or top-up form's price for what it holds now: the price region for htmx
        (as products or hours change), the whole form page for "Beregn pris" without it."""
        asked = read_query(request, orders.PriceQuery)
        form_view = {
            OrderKind.topup.value: TOPUP_FORM,
            OrderKind.plan_addition.value: PLAN_ADDITION_FORM,
        }.get(asked.kind, PLAN_FORM)
        values = {"hours": asked.hours, "products": asked.products}
        if asked.kind == OrderKind.plan_addition.value:
            values["agreement"] = str(asked.agreement or "")
        context = await form_view.context(request, values, {})
        if asks_for_region(request, PRICE_REGION):
            return Template("portal/_price.html", context=context, media_type=MediaType.HTML)
        return page(request, form_view.page, **context)

    @get("/orders", name="orders")
    async def list_orders(self, request: Request) -> Template:
        asked = read_query(request, orders.HistoryQuery)
        found = await orders.history(request.user.company, asked.older_than)
        return page(request, "portal/orders.html", found=found)

    @get("/orders/{order_id:int}", name="order")
    async def show_order(self, request: Request, order_id: FromPath[int]) -> Template:
        order = await orders.get_order(request.user, order_id)
        session_id = request.query_params.get("session_id")
        # Back from Checkout, or "Sjekk status": ask the provider now rather than wait for the
        # webhook. If it cannot be reached, the webhook will do it.
        if session_id and order.status in orders.OPEN_STATUSES:
            with suppress(PaymentsError):
                order = await orders.refresh_order(order, session_id, _payments(request))
        return page(request, "portal/order.html", **await _order_context(request, order))

    @get("/orders/{order_id:int}/status", name="order_status")
    async def show_order_status(self, request: Request, order_id: FromPath[int]) -> Template:
        """The order page's status region, which polls itself until the order is final."""
        order = await orders.get_order(request.user, order_id)
        context = await _order_context(request, order)
        response = Template("portal/_order_status.html", context=context, media_type=MediaType.HTML)
        # The poll's last answer: paid (minutes, a plan, charges settled) or given up.
        if context["final"]:
            announce(response, BALANCE_CHANGED)
        return response

    @post("/orders/{order_id:int}/pay", name="order_pay", opt={"form": ORDER_STATUS})
    async def pay_order(self, request: Request, order_id: FromPath[int]) -> Response:
        """ "Betal": a new Checkout Session for a pending order."""
        order = await orders.get_order(request.user, order_id)
        url = await orders.pay_order(
            request.user, order, _payments(request), request.app.state.settings.base_url
        )
        return redirect(request, url)

    @post("/orders/{order_id:int}/cancel", name="order_cancel", opt={"form": ORDER_STATUS})
    async def cancel_order(self, request: Request, order_id: FromPath[int]) -> Response:
        """ "Avbryt bestillingen": a pending order can no longer be paid."""
        order = await orders.get_order(request.user, order_id)
        await orders.cancel_order(request.user, order, _payments(request))
        return redirect(request, f"/portal/orders/{order.id}", BALANCE_CHANGED)

    @get("/orders/{order_id:int}/receipt", name="receipt")
    async def show_receipt(self, request: Request, order_id: FromPath[int]) -> Template:
        receipt = await orders.receipt(request.user, order_id)
        return page(request, "portal/receipt.html", **vars(receipt))

    @get("/orders/{order_id:int}/receipt.pdf", name="receipt_pdf")
    async def download_receipt(self, request: Request, order_id: FromPath[int]) -> Response:
        """The receipt as a PDF to keep or send on ("Last ned PDF")."""
        receipt = await orders.receipt(request.user, order_id)
        return Response(
            receipt_pdf(receipt),
            media_type="application/pdf",
            headers={
                "content-disposition": f'attachment; filename="{pdf_filename(receipt.order)}"'
            },
        )


class ChargesController(Controller):
    """Support time billed at the hourly rate, and paying it (SPEC §2, alternative 3)."""

    path = "/portal/charges"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get(name="charges")
    async def list_charges(self, request: Request) -> Template:
        return page(request, "portal/charges.html", **await _charges_context(request, {}, {}))
