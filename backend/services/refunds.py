"""Refunds (SPEC §1 admin, §4; issue 12): an admin refunds a paid order, fully or partly.

The effect of a refund — a top-up's unused minutes written off (the refunded share of the lot,
never more than is unused), a plan ended, hourly charges marked refunded — is never applied
here: it comes with Stripe's `charge.refunded` webhook (fulfilment.apply_refunded_total), the
same path as a refund made in Stripe's dashboard, exactly once. This module says beforehand
what a refund will do, with the functions that webhook path uses (`ledger.
refund_write_off_minutes`, `charges.charges_refunded_by`), and makes the refund: one
`RefundRequest` per confirmation page (its token unique), one call to the gateway with an
idempotency key made from that token. A double click or a resubmitted confirmation is the same
request, and Stripe refunds once.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from backend.db import is_unique_violation, lock_row, write_transaction
from backend.i18n import N_
from backend.services import audit, catalog, charges, clock, companies, ledger, orders, policy
from backend.services.errors import NotFound, ValidationFailed
from backend.services.money import format_amount, mva_ore, parse_nok
from backend.services.payments import Payments, PaymentsError
from backend.services.validation import FieldError, convert, line
from backend.services.validation import field as form_field
from backend.tables import (
    Agreement,
    AgreementProduct,
    AuditKind,
    Company,
    HourlyCharge,
    Lot,
    Order,
    OrderKind,
    OrderStatus,
    RefundRequest,
    RefundStatus,
    User,
)

AMOUNT_MESSAGE = N_("Skriv beløpet i kroner inkl. MVA, f.eks. 1 234,50.")
AMOUNT_ZERO = N_("Beløpet må være større enn null.")
AMOUNT_TOO_LARGE = N_("Beløpet er høyere enn det som gjenstår å refundere.")
NOTHING_LEFT = N_("Det er ingenting igjen å refundere på denne bestillingen.")
NOT_PAID = N_("Bare en betalt bestilling kan refunderes.")
CONFIRMATION_INVALID = N_("Bekreftelsen er ugyldig. Start refusjonen på nytt fra bestillingen.")
GATEWAY_FAILED = N_(
    "Betalingstjenesten gjennomførte ikke refusjonen, og ingenting er refundert. "
    "Du kan prøve igjen med en ny bekreftelse."
)

GATEWAY_UNCERTAIN = N_(
    "Betalingstjenesten svarte ikke, så refusjonen kan være gjennomført. Send den igjen fra "
    "bestillingen: den sendes som den samme refusjonen og refunderes aldri to ganger."
)
NOT_PENDING = N_("Refusjonen er allerede sendt eller avvist.")
RESEND_TOO_LATE = N_(
    "Refusjonen ble registrert for mer enn 23 timer siden, og betalingstjenesten husker ikke "
    "lenger om den ble gjennomført. Sjekk betalingen hos Stripe: en gjennomført refusjon kommer "
    "inn av seg selv."
)
# Stripe keeps an idempotency key for at least 24 hours: within that, the same key is the same
# refund; after it, a resend would be a second refund.
RESEND_WINDOW = datetime.timedelta(hours=23)

STATUS_LABELS = {
    RefundStatus.pending.value: N_("Sendes"),
    RefundStatus.sent.value: N_("Sendt"),
    RefundStatus.failed.value: N_("Feilet"),
}


def _amount(text: str) -> str:
    ore = parse_nok(text)
    if ore is None:
        raise FieldError(AMOUNT_MESSAGE)
    if ore <= 0:
        raise FieldError(AMOUNT_ZERO)
    return text


# In NOK incl. MVA, as the admin types it ("1 234,50").
Amount = form_field(
    str, min_length=1, max_length=30, message=AMOUNT_MESSAGE, required=AMOUNT_MESSAGE, check=_amount
)
Reason = line(500, required=N_("Skriv en begrunnelse."))


class RefundForm(msgspec.Struct):
    """The order view's refund form: an amount in NOK incl. MVA ("1 234,50") and a reason."""

    amount: Amount
    reason: Reason


class RefundConfirmation(msgspec.Struct):
    """The confirmation page's form: what was proposed, and the page's own token, which makes
    every submit of this page one refund."""

    amount: Amount
    reason: Reason
    confirmation: form_field(
        str,
        min_length=16,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        message=CONFIRMATION_INVALID,
        required=CONFIRMATION_INVALID,
    )


@dataclass(frozen=True)
class ChargeLine:
    id: int
    minutes: int
    total_ore: int  # incl. MVA
    status: str


@dataclass(frozen=True)
class RequestLine:
    """A refund request as the order view lists it."""

    id: int
    created_at: datetime.datetime
    amount_ore: int
    reason: str
    admin_name: str
    status: str
    stripe_refund_id: str | None
    error: str
    waiting: bool  # sent (or being sent), and its webhook has not come yet

    @property
    def resendable(self) -> bool:
        """Recorded and never answered by the gateway, while its key still names the refund:
        only `resend` may finish it."""
        return self.status == RefundStatus.pending.value and _within_resend_window(self)


@dataclass(frozen=True)
class OrderView:
    order: Order
    company: Company
    description: str
    lot: Lot | None
    agreement: Agreement | None
    charges: list[ChargeLine]
    requests: list[RequestLine]
    # What the order's refunds add up to once those sent have landed.
    committed_ore: int

    @property
    def left_ore(self) -> int:
        return max(0, self.order.total_ore - self.committed_ore)

    @property
    def left_amount(self) -> str:
        """What is left, as the refund form's amount box shows it ("1 234,50")."""
        return format_amount(self.left_ore)

    @property
    def waiting(self) -> bool:
        return any(request.waiting for request in self.requests)

    @property
    def refundable(self) -> bool:
        return _not_refundable(self.order, self.committed_ore) == ""


@dataclass(frozen=True)
class Effect:
    """What a refund bringing the order's refunded total to `total_ore` will do."""

    kind: str
    total_ore: int
    full: bool
    write_off_minutes: int = 0
    unused_minutes: int = 0
    lot: Lot | None = None
    agreement: Agreement | None = None
    plan_ends_on: datetime.date | None = None  # covers nothing from this day; None: ended
    charges: list[ChargeLine] = field(default_factory=list)
    products: list[str] = field(default_factory=list)  # added to a plan: their names


@dataclass(frozen=True)
class Proposal:
    view: OrderView
    amount_ore: int
    amount: str  # as the confirmation form carries it
    reason: str
    confirmation: str
    effect: Effect


def _charge_line(charge: HourlyCharge) -> ChargeLine:
    return ChargeLine(
        id=charge.id,
        minutes=charge.minutes,
        total_ore=charge.amount_ore + mva_ore(charge.amount_ore),
        status=charge.status,
    )


async def _get_order(order_id: int) -> Order:
    order = await Order.objects().get(Order.id == order_id)
    if order is None:
        raise NotFound("no such order")
    return order


async def _committed(order: Order) -> int:
    """The order's refunded total once every refund sent (or being sent) has landed: a refund
    waiting for its webhook already counts against what is left."""
    rows = await RefundRequest.select(RefundRequest.expected_total_ore).where(
        (RefundRequest.order == order.id)
        & RefundRequest.status.is_in([RefundStatus.pending.value, RefundStatus.sent.value])
    )
    return max([order.refunded_ore, *(row["expected_total_ore"] for row in rows)])


def _not_refundable(order: Order, committed: int) -> str:
    """Why the order cannot be refunded now ("" when it can): only a paid order with a
    payment to refund, and something left of it."""
    if order.status not in (OrderStatus.paid.value, OrderStatus.refunded.value):
        return NOT_PAID
    if not order.stripe_payment_intent_id:
        return NOT_PAID
    if committed >= order.total_ore:
        return NOTHING_LEFT
    return ""


async def order_view(user: User, order_id: int) -> OrderView:
    """An order as the back office sees it: its payment, refunds and what it made."""
    policy.require(user, "review_orders")
    order = await _get_order(order_id)
    charge_rows = await (
        HourlyCharge.objects().where(HourlyCharge.order == order.id).order_by(HourlyCharge.id)
    )
    request_rows = await (
        RefundRequest.select(
            *RefundRequest.all_columns(), RefundRequest.requested_by.name.as_alias("admin_name")
        )
        .where(RefundRequest.order == order.id)
        .order_by(RefundRequest.id, ascending=False)
    )
    live = (RefundStatus.pending.value, RefundStatus.sent.value)
    return OrderView(
        order=order,
        company=await companies.get_company(order.company),
        description=await orders.describe(order),
        lot=await orders.lot_for(order),
        agreement=await orders.agreement_for(order),
        charges=[_charge_line(charge) for charge in charge_rows],
        requests=[
            RequestLine(
                id=row["id"],
                created_at=row["created_at"],
                amount_ore=row["amount_ore"],
                reason=row["reason"],
                admin_name=row["admin_name"],
                status=row["status"],
                stripe_refund_id=row["stripe_refund_id"],
                error=row["error"],
                waiting=row["status"] in live and row["expected_total_ore"] > order.refunded_ore,
            )
            for row in request_rows
        ],
        committed_ore=await _committed(order),
    )


async def effect_of(order: Order, total_ore: int) -> Effect:
    """What the `charge.refunded` webhook will do when the order's refunded total reaches
    `total_ore` — computed by the very functions it uses, so the page cannot promise other
    than what happens: a top-up writes off the refunded share of its lot, never more than is
    unused; a plan (any refund of it) ends on the day the refund lands, and so does the
    coverage of products added to a plan; a charges order marks
    refunded the whole charges the total pays back."""
    full = total_ore >= order.total_ore
    if order.kind == OrderKind.topup.value:
        lot = await Lot.objects().get(Lot.order == order.id)
        if lot is None:
            return Effect(kind=order.kind, total_ore=total_ore, full=full)
        return Effect(
            kind=order.kind,
            total_ore=total_ore,
            full=full,
            lot=lot,
            unused_minutes=lot.remaining_minutes,
            write_off_minutes=await ledger.refund_write_off_minutes(lot, total_ore),
        )
    if order.kind == OrderKind.plan.value:
        agreement = await Agreement.objects().get(Agreement.order == order.id)
        ends_on = clock.today() if agreement and agreement.cancelled_on is None else None
        # Products added to the plan later, by orders of their own, end with it: the admin
        # should know, and refund those orders too if the customer is owed it.
        added = (
            await AgreementProduct.select(AgreementProduct.product_code).where(
                (AgreementProduct.agreement == agreement.id)
                & AgreementProduct.order.is_not_null()
                & AgreementProduct.cancelled_on.is_null()
            )
            if ends_on
            else []
        )
        return Effect(
            kind=order.kind,
            total_ore=total_ore,
            full=full,
            agreement=agreement,
            plan_ends_on=ends_on,
            products=await catalog.product_names([row["product_code"] for row in added]),
        )
    if order.kind == OrderKind.plan_addition.value:
        # Products added to a plan: their coverage ends the day the refund lands (any refund).
        added = await AgreementProduct.select(AgreementProduct.product_code).where(
            (AgreementProduct.order == order.id) & AgreementProduct.cancelled_on.is_null()
        )
        return Effect(
            kind=order.kind,
            total_ore=total_ore,
            full=full,
            plan_ends_on=clock.today() if added else None,
            products=await catalog.product_names([row["product_code"] for row in added]),
        )
    refunded = await charges.charges_refunded_by(order, total_ore)
    return Effect(
        kind=order.kind,
        total_ore=total_ore,
        full=full,
        charges=[_charge_line(charge) for charge in refunded],
    )


def _check(order: Order, committed: int, amount_ore: int, values: Mapping[str, Any]) -> None:
    problem = _not_refundable(order, committed)
    if problem:
        raise ValidationFailed({"form": problem}, dict(values))
    if amount_ore > order.total_ore - committed:
        raise ValidationFailed({"amount": AMOUNT_TOO_LARGE}, dict(values))


def new_confirmation() -> str:
    return secrets.token_urlsafe(24)


async def propose(user: User, order_id: int, values: Mapping[str, Any]) -> Proposal:
    """The confirmation page of a refund: the amount checked against what is left, and what
    the refund will do. Nothing is sent or written."""
    policy.require(user, "refund")
    view = await order_view(user, order_id)
    form = convert(values, RefundForm)
    amount_ore = parse_nok(form.amount) or 0
    _check(view.order, view.committed_ore, amount_ore, values)
    return Proposal(
        view=view,
        amount_ore=amount_ore,
        amount=format_amount(amount_ore),
        reason=form.reason,
        confirmation=new_confirmation(),
        effect=await effect_of(view.order, view.committed_ore + amount_ore),
    )


def _effect_summary(effect: Effect) -> dict[str, Any]:
    if effect.kind == OrderKind.topup.value:
        return {"write_off_minutes": effect.write_off_minutes}
    if effect.kind in (OrderKind.plan.value, OrderKind.plan_addition.value):
        return {"plan_ends_on": effect.plan_ends_on.isoformat() if effect.plan_ends_on else None}
    return {"charges_refunded": [charge.id for charge in effect.charges]}


def _same_request(earlier: RefundRequest, order: Order, values: Mapping[str, Any]) -> RefundRequest:
    if earlier.order != order.id:
        raise ValidationFailed({"form": CONFIRMATION_INVALID}, dict(values))
    return earlier


async def confirm(
    user: User, order_id: int, values: Mapping[str, Any], payments: Payments
) -> RefundRequest:
    """Refund what the confirmation page proposed: a request row and its audit entry, in one
    transaction with the check of what is left (the order's row locked: two confirmations
    cannot both take the last krone), then the gateway's refund, idempotent on the page's
    token. A confirmation submitted again is the request made the first time: no second row,
    no second call. A refusal by the gateway marks the request failed, and says so."""
    policy.require(user, "refund")
    order = await _get_order(order_id)
    form = convert(values, RefundConfirmation)
    amount_ore = parse_nok(form.amount) or 0
    key = form.confirmation
    earlier = await RefundRequest.objects().get(RefundRequest.idempotency_key == key)
    if earlier is not None:
        return _same_request(earlier, order, values)
    try:
        async with write_transaction(Order._meta.db):
            await lock_row(Order, order.id)
            order = await _get_order(order.id)
            committed = await _committed(order)
            _check(order, committed, amount_ore, values)
            effect = await effect_of(order, committed + amount_ore)
            request = RefundRequest(
                order=order.id,
                amount_ore=amount_ore,
                expected_total_ore=committed + amount_ore,
                reason=form.reason,
                requested_by=user.id,
                idempotency_key=key,
            )
            await request.save()
            await audit.record(
                user,
                AuditKind.refund,
                company=order.company,
                subject=f"order:{order.id}",
                before={"refunded_ore": committed, "total_ore": order.total_ore},
                after={
                    "refunded_ore": committed + amount_ore,
                    "amount_ore": amount_ore,
                    **_effect_summary(effect),
                },
                reason=form.reason,
            )
    except Exception as error:
        if not is_unique_violation(error):
            raise
        # The same confirmation, submitted twice at once: the first one refunds.
        earlier = await RefundRequest.objects().get(RefundRequest.idempotency_key == key)
        if earlier is None:
            raise
        return _same_request(earlier, order, values)
    return await _send(request, order, values, payments)


async def _send(
    request: RefundRequest, order: Order, values: Mapping[str, Any], payments: Payments
) -> RefundRequest:
    """The gateway's refund of `request`, always with the idempotency key of its confirmation:
    sent again, Stripe answers with the refund it made the first time."""
    try:
        refund = await payments.refund(
            payment_intent=order.stripe_payment_intent_id,
            amount_ore=request.amount_ore,
            key=f"admin-refund-{request.idempotency_key}",
        )
    except PaymentsError as failure:
        if failure.uncertain:
            # Perhaps refunded: the request stays pending, keeps its amount reserved, and can
            # only be sent again (`resend`), never replaced by a new confirmation.
            await RefundRequest.update({RefundRequest.error: str(failure)[:500]}).where(
                RefundRequest.id == request.id
            )
            raise ValidationFailed({"form": GATEWAY_UNCERTAIN}, dict(values)) from failure
        await RefundRequest.update(
            {
                RefundRequest.status: RefundStatus.failed.value,
                RefundRequest.error: str(failure)[:500],
            }
        ).where(RefundRequest.id == request.id)
        raise ValidationFailed({"form": GATEWAY_FAILED}, dict(values)) from failure
    await RefundRequest.update(
        {
            RefundRequest.status: RefundStatus.sent.value,
            RefundRequest.stripe_refund_id: refund["id"],
            RefundRequest.error: "",
        }
    ).where((RefundRequest.id == request.id) & (RefundRequest.status == RefundStatus.pending.value))
    return request


async def resend(user: User, order_id: int, request_id: int, payments: Payments) -> RefundRequest:
    """A request whose sending had no answer (or was cut off), sent again as the same refund."""
    policy.require(user, "refund")
    order = await _get_order(order_id)
    request = await RefundRequest.objects().get(
        (RefundRequest.id == request_id) & (RefundRequest.order == order.id)
    )
    if request is None:
        raise NotFound("no such refund request")
    if request.status != RefundStatus.pending.value:
        raise ValidationFailed({"form": NOT_PENDING})
    if not _within_resend_window(request):
        raise ValidationFailed({"form": RESEND_TOO_LATE})
    return await _send(request, order, {}, payments)


def _within_resend_window(request: RefundRequest | RequestLine) -> bool:
    return clock.now() - request.created_at < RESEND_WINDOW
