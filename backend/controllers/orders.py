"""Buying: the plan and top-up pages, placing an order, and the order (success) page."""

from __future__ import annotations

from contextlib import suppress

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Response, Template

from backend.i18n import N_
from backend.services import agreements, billing, catalog, clock, ledger
from backend.services.errors import NotAllowed, ValidationFailed
from backend.services.money import mva_ore
from backend.services.payments import Payments, PaymentsError
from backend.tables import OrderKind
from backend.web.forms import read_form
from backend.web.security import requires_company_user
from backend.web.templating import form_response, page, redirect

PAYMENTS_DOWN = N_("Betalingstjenesten svarer ikke akkurat nå. Prøv igjen om litt.")


def _payments(request: Request) -> Payments:
    return request.app.state.payments


class OrdersController(Controller):
    path = "/portal"
    guards = [requires_company_user]  # noqa: RUF012

    @get("/plan", name="plan")
    async def show_plan(self, request: Request) -> Template:
        return page(request, "portal/plan.html", **await self._plan_context(request, {}, {}))

    @get("/topup", name="topup")
    async def show_topup(self, request: Request) -> Template:
        return page(request, "portal/topup.html", **await self._topup_context(request, {}, {}))

    async def _plan_context(self, request: Request, form: dict, errors: dict) -> dict:
        company_id = request.user.company
        today = clock.today()
        starts_on, ends_on = await agreements.next_plan_period(company_id, today)
        return {
            "offer": await catalog.current_offer(),
            "plans": await agreements.current_and_future_plans(company_id, today),
            "starts_on": starts_on,
            "ends_on": ends_on,
            "form": form,
            "errors": errors,
        }

    async def _topup_context(self, request: Request, form: dict, errors: dict) -> dict:
        company_id = request.user.company
        lots = await ledger.open_lots(company_id, clock.today())
        current = sorted({code for lot in lots for code in lot.product_codes})
        return {
            "offer": await catalog.current_offer(),
            "lots": lots,
            "expires_on": billing.topup_expires_on(clock.now()),
            "form": form or {"products": current, "hours": "5"},
            "errors": errors,
        }

    @post("/orders", name="order_create")
    async def create_order(self, request: Request) -> Response | Template:
        form: dict = {}
        try:
            form = await read_form(request, ("kind", "hours"), lists=("products",))
            order = await billing.place_order(request.user, form, _payments(request))
            url = await billing.start_checkout(
                order, _payments(request), request.app.state.settings.base_url
            )
        except NotAllowed:
            raise PermissionDeniedException() from None
        except (ValidationFailed, PaymentsError) as failure:
            if isinstance(failure, ValidationFailed):
                form = failure.values or form
            errors = (
                failure.errors if isinstance(failure, ValidationFailed) else {"form": PAYMENTS_DOWN}
            )
            status = 422 if isinstance(failure, ValidationFailed) else 503
            if form.get("kind") == OrderKind.charges.value:
                return form_response(
                    request,
                    "portal/charges.html",
                    "portal/_charges_pay.html",
                    status,
                    **await charges_context(request.user.company, errors),
                )
            if form.get("kind") == OrderKind.topup.value:
                context = await self._topup_context(request, form, errors)
                return form_response(
                    request, "portal/topup.html", "portal/_topup_form.html", status, **context
                )
            context = await self._plan_context(request, form, errors)
            return form_response(
                request, "portal/plan.html", "portal/_plan_form.html", status, **context
            )
        return redirect(request, url)

    @get("/orders/{order_id:int}", name="order")
    async def show_order(self, request: Request, order_id: FromPath[int]) -> Template:
        order = await self._order(request, order_id)
        session_id = request.query_params.get("session_id")
        # Back from Checkout, or "Sjekk status": ask the provider now rather than wait for the
        # webhook. If it cannot be reached, the webhook will do it.
        if session_id and order.status in billing.OPEN_STATUSES:
            with suppress(PaymentsError):
                order = await billing.refresh_order(order, session_id, _payments(request))
        return page(request, "portal/order.html", **await self._order_context(request, order))

    @get("/orders/{order_id:int}/status", name="order_status")
    async def show_order_status(self, request: Request, order_id: FromPath[int]) -> Template:
        """The order page's status region, which polls itself until the order is final."""
        order = await self._order(request, order_id)
        return Template(
            "portal/_order_status.html", context=await self._order_context(request, order)
        )

    @post("/orders/{order_id:int}/pay", name="order_pay")
    async def pay_order(self, request: Request, order_id: FromPath[int]) -> Response | Template:
        """ "Betal": a new Checkout Session for a pending order."""
        order = await self._order(request, order_id)
        try:
            url = await billing.pay_order(
                request.user, order, _payments(request), request.app.state.settings.base_url
            )
        except NotAllowed:
            raise PermissionDeniedException() from None
        except PaymentsError:
            return await self._order_problem(request, order_id)
        return redirect(request, url)

    @post("/orders/{order_id:int}/cancel", name="order_cancel")
    async def cancel_order(self, request: Request, order_id: FromPath[int]) -> Response | Template:
        """ "Avbryt bestillingen": a pending order can no longer be paid."""
        order = await self._order(request, order_id)
        try:
            await billing.cancel_order(request.user, order, _payments(request))
        except NotAllowed:
            raise PermissionDeniedException() from None
        except PaymentsError:
            return await self._order_problem(request, order_id)
        return redirect(request, f"/portal/orders/{order.id}")

    @get("/orders/{order_id:int}/receipt", name="receipt")
    async def show_receipt(self, request: Request, order_id: FromPath[int]) -> Template:
        order = await self._order(request, order_id)
        return page(request, "portal/receipt.html", **await self._order_context(request, order))

    async def _order(self, request: Request, order_id: int):
        try:
            return await billing.get_order(request.user, order_id)
        except NotAllowed:
            raise NotFoundException() from None

    async def _order_problem(self, request: Request, order_id: int) -> Template:
        order = await self._order(request, order_id)
        context = await self._order_context(request, order, error=PAYMENTS_DOWN)
        return form_response(
            request, "portal/order.html", "portal/_order_status.html", 503, **context
        )

    async def _order_context(self, request: Request, order, error: str = "") -> dict:
        check_url = f"/portal/orders/{order.id}"
        if order.stripe_session_id:
            check_url += f"?session_id={order.stripe_session_id}"
        return {
            "order": order,
            "description": await billing.describe(order),
            "agreement": await billing.agreement_for(order),
            "lot": await billing.lot_for(order),
            "final": order.status in billing.FINAL_STATUSES,
            "form_path": billing.form_path(order.kind),
            "can_buy": billing.can_buy(request.user),
            "check_url": check_url,
            "error": error,
        }


async def charges_context(company_id: int, errors: dict) -> dict:
    amount = await billing.outstanding_ore(company_id)
    return {
        "charges": await billing.charges_of(company_id),
        "outstanding_ore": amount,
        "outstanding_mva_ore": mva_ore(amount),
        "errors": errors,
    }


class ChargesController(Controller):
    """Support time billed at the hourly rate, and paying it (SPEC §2, alternative 3)."""

    path = "/portal/charges"
    guards = [requires_company_user]  # noqa: RUF012

    @get(name="charges")
    async def list_charges(self, request: Request) -> Template:
        return page(
            request, "portal/charges.html", **await charges_context(request.user.company, {})
        )
