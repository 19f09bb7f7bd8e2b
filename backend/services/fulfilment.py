"""Fulfilment (SPEC §4): verified Stripe events and the success page's look at a session.

An order is paid only by one of its own Checkout Sessions, for exactly its total incl. MVA, in
NOK, with the order's company as client_reference_id. Anything else moves nothing: it is logged
with the event id and the order it names is flagged for an admin. Expiry and failure move an
order only from its current session.

An order is fulfilled exactly once — from a verified webhook or from the success page's look at
the session, whichever comes first — because the order's status moves from pending/processing
to paid with one conditional UPDATE, in the same transaction as the plan or lot it creates, the
event id it records and the receipt mail it writes to the outbox (services/outbox.py). A second
payment for an order that is no longer open is refunded. Calls to the provider that a change
leads to run after its transaction (`payments.After`). A refund of a top-up writes off the lot's
unused minutes; of a plan ends it; of products added to a plan ends them; of hourly charges marks
them refunded.

Products added to a plan (services/product_additions.py) are added when the order is paid, once
per product; if the plan period has ended (or a refund ended it) by the day of payment, nothing
is added, the order is flagged and the payment refunded in full, as a second payment is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from backend.db import is_unique_violation, lock_row, write_transaction
from backend.i18n import N_, speaking
from backend.services import (
    agreements,
    charges,
    clock,
    companies,
    ledger,
    orders,
    outbox,
    pricing,
    product_additions,
    users,
)
from backend.services.errors import MalformedEvent
from backend.services.payments import After, Payments, PaymentsError, run_after
from backend.services.validation import MAX_ID
from backend.tables import (
    Agreement,
    ChargeStatus,
    CheckoutSession,
    Company,
    EntryKind,
    HourlyCharge,
    Lot,
    Order,
    OrderKind,
    OrderStatus,
    StripeEvent,
)

logger = logging.getLogger("portal.fulfilment")


SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)


async def handle_event(event: Any, payments: Payments | None = None) -> str:
    """One verified webhook event. Returns what was done (for the log and the tests).

    A signed body that is not an event the portal can read raises MalformedEvent before
    anything is recorded. Calls to the provider that an event leads to (refunding a second
    payment, noting the charge that paid) run after its transaction, with `payments`."""
    kind, obj = _checked_event(event)
    if kind in SESSION_EVENTS:
        handler = apply_session
    elif kind == "charge.refunded":
        handler = _apply_refund
    else:
        return "ignored"
    try:
        async with write_transaction(Order._meta.db):
            await StripeEvent(event_id=event["id"], type=kind).save()
            after = await handler(obj, event["id"], kind)
    except Exception as error:
        if is_unique_violation(error) and await StripeEvent.exists().where(
            StripeEvent.event_id == event["id"]
        ):
            return "duplicate"
        raise
    await run_after(after, payments)
    return "handled"


def _checked_event(event: Any) -> tuple[str, dict[str, Any]]:
    """The event's type and object, if every field the handlers read has the type they
    expect; else MalformedEvent with the reason."""
    if not isinstance(event, dict):
        raise MalformedEvent("the event is not a JSON object")
    _expect(event, "id", str, required=True)
    _expect(event, "type", str, required=True)
    if len(event["id"]) > 255 or len(event["type"]) > 100:
        raise MalformedEvent("id or type is too long")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("data.object is missing or not an object")
    obj = data["object"]
    kind = event["type"]
    if kind in SESSION_EVENTS:
        _expect(obj, "id", str, required=True)
        for name in ("status", "payment_status", "currency", "client_reference_id"):
            _expect(obj, name, str)
        _expect(obj, "payment_intent", str)
        _expect(obj, "amount_total", int)
        metadata = obj.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise MalformedEvent("metadata is not an object")
        order_id = (metadata or {}).get("order_id")
        if order_id is not None and _order_id(order_id) is None:
            raise MalformedEvent("metadata.order_id is not an order id")
    elif kind == "charge.refunded":
        _expect(obj, "id", str)
        _expect(obj, "payment_intent", str)
        _expect(obj, "amount_refunded", int, required=True)
        if obj["amount_refunded"] < 0:
            raise MalformedEvent("amount_refunded is negative")
    return kind, obj


def _expect(obj: Mapping[str, Any], name: str, kind: type, *, required: bool = False) -> None:
    value = obj.get(name)
    if value is None and not required:
        return
    # bool is an int to Python, never to Stripe.
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise MalformedEvent(f"{name} is missing or not a {kind.__name__}")
    if isinstance(value, str) and len(value) > 255:
        raise MalformedEvent(f"{name} is too long")


def _order_id(value: Any) -> int | None:
    """An order id as Stripe metadata carries it ("123"), within the column's range."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


async def _own_order(session: Mapping[str, Any]) -> tuple[Order | None, str | None]:
    """The order a session pays: (order, None) when the portal created the session for that
    order and it asks for exactly the order's money, from the order's company. Otherwise
    (the order it names, if any, for the admins; why it is not trusted)."""
    own = await (
        CheckoutSession.select(CheckoutSession.order)
        .where(CheckoutSession.session_id == session["id"])
        .first()
    )
    if own is None:
        order_id = _order_id((session.get("metadata") or {}).get("order_id"))
        named = await Order.objects().get(Order.id == order_id) if order_id else None
        return named, "økten ble ikke opprettet av portalen for denne bestillingen"
    order = await Order.objects().get(Order.id == own["order"])
    if session.get("currency") != "nok":
        return order, f"valuta {session.get('currency')!r}, ikke 'nok'"
    if session.get("amount_total") != order.total_ore:
        return order, f"beløp {session.get('amount_total')} øre, bestillingen er {order.total_ore}"
    if session.get("client_reference_id") != str(order.company):
        return order, f"client_reference_id {session.get('client_reference_id')!r} er ikke firmaet"
    return order, None


async def flag(order_id: int, reason: str) -> None:
    """Show the order to admins as needing review (the staff company page), newest reason
    first, earlier ones kept as far as the column reaches."""
    row = await Order.select(Order.review_reason).where(Order.id == order_id).first()
    if row is None or reason in row["review_reason"]:
        return
    reasons = f"{reason} | {row['review_reason']}" if row["review_reason"] else reason
    await Order.update({Order.review_reason: reasons[:500]}).where(Order.id == order_id)


async def apply_session(
    session: Mapping[str, Any], event_id: str | None, event_type: str | None = None
) -> list[After]:
    """A session's news for its order. Only the order's own sessions move it, and a session's
    expiry or failure only while it is the current one: an outsider's session that names the
    order, or an old session the portal replaced, changes nothing."""
    order, problem = await _own_order(session)
    if problem is not None:
        logger.warning(
            "checkout session %s not trusted (event %s, order %s): %s",
            session["id"],
            event_id,
            order.id if order else None,
            problem,
        )
        if order is not None:
            await flag(
                order.id,
                f"Betaling som ikke stemmer: økt {session['id']}, hendelse {event_id or '–'}: "
                f"{problem}. Ingenting er kreditert.",
            )
        return []
    assert order is not None
    current = session["id"] == order.stripe_session_id
    if event_type == "checkout.session.async_payment_failed":
        if current:
            await _set_status(order, OrderStatus.failed, N_("Betalingen ble avvist av banken."))
    elif event_type == "checkout.session.expired":
        if current:
            await _set_status(
                order, OrderStatus.expired, N_("Betalingen ble ikke fullført i tide.")
            )
    elif session.get("payment_status") == "paid":
        return await _fulfil(order, session, event_id)
    elif session.get("status") == "complete":
        # A delayed payment method: paid later (async_payment_succeeded) or not.
        await Order.update({Order.status: OrderStatus.processing.value}).where(
            (Order.id == order.id) & (Order.status == OrderStatus.pending.value)
        )
    return []


async def _set_status(order: Order, status: OrderStatus, reason: str) -> None:
    await Order.update({Order.status: status.value, Order.failure_reason: reason}).where(
        (Order.id == order.id) & Order.status.is_in(list(orders.OPEN_STATUSES))
    )


async def _fulfil(order: Order, session: Mapping[str, Any], event_id: str | None) -> list[After]:
    payment_intent = session.get("payment_intent")
    after: list[After] = []
    async with write_transaction(Order._meta.db):
        paid_at = clock.now()
        won = (
            await Order.update(
                {
                    Order.status: OrderStatus.paid.value,
                    Order.paid_at: paid_at,
                    Order.stripe_payment_intent_id: payment_intent,
                    Order.failure_reason: "",
                }
            )
            .where((Order.id == order.id) & Order.status.is_in(list(orders.OPEN_STATUSES)))
            .returning(Order.id)
        )
        if not won:
            return await _paid_again(order, session, event_id)
        if payment_intent:
            after.append(partial(_record_charge, order.id, payment_intent))
        paid_on = clock.oslo_date(paid_at)
        codes = order.product_codes.split(",")
        if order.kind == OrderKind.plan.value:
            # Two plan orders paid at once must not both start after the same last period.
            await lock_row(Company, order.company)
            starts_on, ends_on = await agreements.next_plan_period(order.company, paid_on)
            await agreements.create_plan(
                company_id=order.company,
                order_id=order.id,
                product_codes=codes,
                starts_on=starts_on,
                ends_on=ends_on,
            )
        elif order.kind == OrderKind.charges.value:
            await HourlyCharge.update({HourlyCharge.status: ChargeStatus.paid.value}).where(
                (HourlyCharge.order == order.id)
                & (HourlyCharge.status == ChargeStatus.outstanding.value)
            )
            # Voided while this payment was under way: the money goes back.
            voided = (
                await HourlyCharge.update({HourlyCharge.status: ChargeStatus.refunded.value})
                .where(
                    (HourlyCharge.order == order.id)
                    & (HourlyCharge.status == ChargeStatus.cancelled.value)
                )
                .returning(HourlyCharge.id)
            )
            after += [partial(charges.refund_charge, row["id"]) for row in voided]
        elif order.kind == OrderKind.plan_addition.value:
            # Two additions (or a refund) at once must see each other's rows.
            await lock_row(Company, order.company)
            added = await product_additions.add_to_plan(order, paid_on)
            if not added.added:
                return after + await _not_added(order, session, event_id, added)
        elif order.kind == OrderKind.topup.value:
            await ledger.credit_lot(
                company_id=order.company,
                minutes=order.hours * 60,
                expires_on=pricing.topup_expires_on(paid_at),
                product_codes=codes,
                key=f"order:{order.id}",
                cause=ledger.Cause(type="order", id=str(order.id)),
                order_id=order.id,
            )
        await _mail_receipt(order.id, order.company)
    return after


async def _not_added(
    order: Order,
    session: Mapping[str, Any],
    event_id: str | None,
    added: product_additions.Added,
) -> list[After]:
    """A plan addition paid when there was nothing to add it to (the period ended or was
    refunded meanwhile) or nothing left to add: the order stays paid (the money came), is
    flagged, and the payment goes back in full; its refund event then marks it refunded."""
    why = (
        "avtaleperioden var avsluttet eller refundert"
        if not added.in_force
        else f"{', '.join(added.already)} var allerede lagt til avtalen av en annen bestilling"
    )
    logger.warning("plan addition %s paid but not added (%s): refunding", order.id, why)
    await flag(
        order.id,
        f"Betalt (økt {session['id']}, hendelse {event_id or '–'}), men ingenting ble lagt til:"
        f" {why}. Betalingen refunderes automatisk.",
    )
    payment_intent = session.get("payment_intent")
    if not payment_intent:
        return []
    return [
        partial(
            _refund_payment,
            order.id,
            payment_intent,
            int(session.get("amount_total") or order.total_ore),
            f"order-{order.id}-not-added-refund",
        )
    ]


async def _mail_receipt(order_id: int, company_id: int) -> None:
    """The receipt to the company's superuser, written with the payment: once per order."""
    superuser = await companies.get_superuser(company_id)
    if superuser is None:
        return
    language = users.language_of(superuser)
    with speaking(language):
        receipt = await orders.receipt(superuser, order_id)
    await outbox.queue(
        superuser.email, "receipt", {"receipt": receipt}, f"receipt:{order_id}", language=language
    )


async def _paid_again(
    order: Order, session: Mapping[str, Any], event_id: str | None
) -> list[After]:
    """An own session paid an order that is no longer open. The same payment told twice (the
    success page, then the webhook) changes nothing; a second payment (another tab's session,
    or one paid just as the order was cancelled or replaced) is refunded in full."""
    payment_intent = session.get("payment_intent")
    paid_by = await Order.select(Order.stripe_payment_intent_id).where(Order.id == order.id).first()
    if not payment_intent or paid_by["stripe_payment_intent_id"] == payment_intent:
        return []
    logger.warning(
        "order %s paid again by session %s (event %s): refunding", order.id, session["id"], event_id
    )
    await flag(
        order.id,
        f"Betalt en gang til (økt {session['id']}, hendelse {event_id or '–'}) da bestillingen "
        "ikke lenger ventet på betaling; den betalingen refunderes automatisk.",
    )
    return [
        partial(
            _refund_payment,
            order.id,
            payment_intent,
            int(session.get("amount_total") or order.total_ore),
            f"session-{session['id']}-refund",
        )
    ]


async def _refund_payment(
    order_id: int, payment_intent: str, amount_ore: int, key: str, payments: Payments
) -> None:
    try:
        await payments.refund(payment_intent=payment_intent, amount_ore=amount_ore, key=key)
    except PaymentsError as error:
        logger.error("refund of %s for order %s failed: %s", payment_intent, order_id, error)
        await flag(order_id, f"Automatisk refusjon av {payment_intent} feilet: {error}")


async def _record_charge(order_id: int, payment_intent: str, payments: Payments) -> None:
    """Note the charge that paid the order, so that a refund event that names only the charge
    (payment_intent null) still finds it."""
    intent = await payments.retrieve_payment_intent(payment_intent)
    charge = intent.get("latest_charge")
    charge_id = charge.get("id") if isinstance(charge, dict) else charge
    if charge_id:
        await Order.update({Order.stripe_charge_id: charge_id}).where(
            (Order.id == order_id) & Order.stripe_charge_id.is_null()
        )


async def _apply_refund(
    charge: Mapping[str, Any], event_id: str | None, event_type: str | None = None
) -> list[After]:
    """A refund found by a key that is there: the payment intent if the charge names one,
    else the charge's own id recorded at fulfilment. (`== None` would be IS NULL in SQL and
    match any unpaid order.) A refund no order knows is logged and changes nothing."""
    order = None
    if charge.get("payment_intent"):
        order = await Order.objects().get(
            Order.stripe_payment_intent_id == charge["payment_intent"]
        )
    if order is None and charge.get("id"):
        order = await Order.objects().get(Order.stripe_charge_id == charge["id"])
    if order is None:
        logger.warning(
            "refund of a payment no order knows (event %s, charge %s, payment intent %s)",
            event_id,
            charge.get("id"),
            charge.get("payment_intent"),
        )
        return []
    await apply_refunded_total(order, charge["amount_refunded"])
    return []


async def apply_refunded_total(order: Order, amount_refunded: int) -> None:
    """Stripe's running total refunded on the order's payment (incl. MVA). A refund of a
    top-up writes off the lot's unused minutes, up to the refunded share; a refund of a plan
    ends it (SPEC §4); a refund, whole or part, of products added to a plan ends their
    coverage that day; a refund of a charges order marks the charges it paid back refunded.
    The total only grows, so events out of order or twice change nothing."""
    refunded = min(amount_refunded, order.total_ore)
    status = OrderStatus.refunded.value if refunded >= order.total_ore else order.status
    won = (
        await Order.update({Order.refunded_ore: refunded, Order.status: status})
        .where((Order.id == order.id) & (Order.refunded_ore < refunded))
        .returning(Order.id)
    )
    if not won:
        return  # an older event, out of order
    cause = ledger.Cause(type="order", id=str(order.id), note="Refusjon")
    if order.kind == OrderKind.topup.value:
        lot = await Lot.objects().get(Lot.order == order.id)
        if lot is None:
            return
        # The refunded share of the lot, cumulative over partial refunds.
        due = await ledger.refund_write_off_minutes(lot)
        if due:
            await ledger.write_off(
                lot_id=lot.id,
                max_minutes=due,
                kind=EntryKind.refund_write_off,
                key=f"refund:{order.id}:{refunded}",
                cause=cause,
            )
    elif order.kind == OrderKind.plan.value:
        await Agreement.update({Agreement.cancelled_on: clock.today()}).where(
            (Agreement.order == order.id) & Agreement.cancelled_on.is_null()
        )
    elif order.kind == OrderKind.plan_addition.value:
        await product_additions.end_addition(order, clock.today())
    elif order.kind == OrderKind.charges.value:
        await charges.mark_charges_refunded(order, refunded)
