"""An order in the back office (issue 12), admins only: its payment, refunds and effect, and
refunding it — a form, a confirmation page that says what will happen, and the refund."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Response, Template

from backend.services import refunds
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_values
from backend.web.guards import allowed
from backend.web.templating import asks_for_region, page, redirect


async def _order_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    """The order view; a refund that did not go through keeps what was typed (never the
    confirmation's token: a new try needs a new confirmation)."""
    view = await refunds.order_view(request.user, request.path_params["order_id"])
    form = {key: values[key] for key in ("amount", "reason") if key in values}
    return {
        "view": view,
        "refund_form": form or {"amount": view.left_amount},
        "refund_errors": errors,
        "refund_labels": refunds.STATUS_LABELS,
    }


# The region that asks again while a refund waits for its webhook.
REFUND_STATUS = "refund-status"
REFUND_FORM = FormView("staff/order.html", "staff/_refund_form.html", _order_context)


class StaffOrdersController(Controller):
    path = "/staff/orders"
    guards = [allowed("review_orders")]  # noqa: RUF012

    @get("/{order_id:int}", name="staff_order")
    async def show_order(self, request: Request, order_id: FromPath[int]) -> Template:
        context = await _order_context(request, {}, {})
        if asks_for_region(request, REFUND_STATUS):
            return Template("staff/_refund_status.html", context=context)
        return page(request, "staff/order.html", **context)

    @post(
        "/{order_id:int}/refund",
        name="staff_order_refund",
        guards=[allowed("refund")],
        operation_class=form_operation(refunds.RefundForm),
        opt={"form": REFUND_FORM},
        status_code=200,
    )
    async def propose_refund(self, request: Request, order_id: FromPath[int]) -> Template:
        """The confirmation page: what the refund will do, before anything is sent."""
        await refunds.order_view(request.user, order_id)  # 404 before the form's 422
        values = await read_values(request, refunds.RefundForm)
        proposal = await refunds.propose(request.user, order_id, values)
        return page(request, "staff/refund_confirm.html", proposal=proposal)

    @post(
        "/{order_id:int}/refund/confirm",
        name="staff_order_refund_confirm",
        guards=[allowed("refund")],
        operation_class=form_operation(refunds.RefundConfirmation),
        opt={"form": REFUND_FORM},
    )
    async def confirm_refund(self, request: Request, order_id: FromPath[int]) -> Response:
        await refunds.order_view(request.user, order_id)  # 404 before the form's 422
        values = await read_values(request, refunds.RefundConfirmation)
        await refunds.confirm(request.user, order_id, values, request.app.state.payments)
        return redirect(request, f"/staff/orders/{order_id}")

    @post(
        "/{order_id:int}/refunds/{request_id:int}/resend",
        name="staff_order_refund_resend",
        guards=[allowed("refund")],
        opt={"form": REFUND_FORM},
    )
    async def resend_refund(
        self, request: Request, order_id: FromPath[int], request_id: FromPath[int]
    ) -> Response:
        """A refund the gateway never answered, sent again as the same refund."""
        await refunds.resend(request.user, order_id, request_id, request.app.state.payments)
        return redirect(request, f"/staff/orders/{order_id}")
