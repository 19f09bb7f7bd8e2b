"""Orders and payments (SPEC §2, §4): what a purchase costs, checkout, and fulfilment exactly once.

The server computes every amount; the browser only says what to buy. An order is paid only by
one of its own Checkout Sessions (each one the portal creates is recorded; the newest is the
order's current one), for exactly its total incl. MVA, in NOK, with the order's company as
client_reference_id. Anything else moves nothing: it is logged with the event id and the order
it names is flagged for an admin. Expiry and failure move an order only from its current
session.

An order is fulfilled exactly once — from a verified webhook or from the success page's look at
the session, whichever comes first — because the order's status moves from pending/processing
to paid with one conditional UPDATE, in the same transaction as the plan or lot it creates and
the event id it records. A second payment for an order that is no longer open is refunded.
Calls to the provider that a change leads to run after its transaction (`After`).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec
from piccolo.engine.postgres import PostgresEngine

from backend.db import is_unique_violation, json_rows, write_transaction
from backend.i18n import N_
from backend.services import agreements, catalog, clock, ledger, policy
from backend.services.errors import MalformedEvent, NotFound, ValidationFailed
from backend.services.money import mva_ore
from backend.services.payments import CheckoutLine, Payments, PaymentsError
from backend.services.validation import FieldError, convert, convert_field, field
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
    Role,
    StripeEvent,
    User,
)

logger = logging.getLogger("portal.billing")

# A call to the payment provider, made once the database change that led to it is committed.
After = Callable[[Payments], Awaitable[None]]

MIN_TOPUP_HOURS = 1
MAX_ORDER_ID = 2**31 - 1  # the id column's range
SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)
MAX_TOPUP_HOURS = 200
OPEN_STATUSES = (OrderStatus.pending.value, OrderStatus.processing.value)
FINAL_STATUSES = (
    OrderStatus.paid.value,
    OrderStatus.failed.value,
    OrderStatus.expired.value,
    OrderStatus.refunded.value,
    OrderStatus.cancelled.value,
)


@dataclass(frozen=True)
class Quote:
    kind: str
    product_codes: tuple[str, ...]
    hours: int
    amount_ore: int  # ex. MVA
    unit_label: str
    starts_on: datetime.date | None = None  # plan
    ends_on: datetime.date | None = None  # plan
    expires_on: datetime.date | None = None  # top-up, if paid today

    @property
    def mva_ore(self) -> int:
        return mva_ore(self.amount_ore)

    @property
    def total_ore(self) -> int:
        return self.amount_ore + self.mva_ore


async def quote(
    company_id: int, kind: str, hours: str | int, product_codes: Sequence[str]
) -> Quote:
    """The price of a plan or a top-up, from the catalog, or every reason it cannot be bought.
    (A charges order is priced from the charges it takes: see `_charges_order`.)"""
    offer = await catalog.current_offer()
    if offer.prices is None:
        raise ValidationFailed({"form": N_("Prisene er ikke lagt inn ennå.")})
    errors: dict[str, str] = {}
    known = {p.code for p in offer.products}
    codes = tuple(dict.fromkeys(product_codes))  # unique, in the order given
    if not codes:
        errors["products"] = N_("Velg minst ett produkt.")
    elif not set(codes) <= known:
        errors["products"] = N_("Ukjent produkt.")
    today = clock.today()
    if kind == OrderKind.plan.value:
        if errors:
            raise ValidationFailed(errors)
        starts_on, ends_on = await agreements.next_plan_period(company_id, today)
        return Quote(
            kind=kind,
            product_codes=codes,
            hours=0,
            amount_ore=offer.prices.plan_price_per_product_ore * len(codes),
            unit_label=N_("Fri support, 6 måneder"),
            starts_on=starts_on,
            ends_on=ends_on,
        )
    if kind == OrderKind.topup.value:
        whole_hours = _whole_hours(str(hours))
        if whole_hours is None:
            errors["hours"] = HOURS_MESSAGE
        if errors:
            raise ValidationFailed(errors)
        assert whole_hours is not None
        return Quote(
            kind=kind,
            product_codes=codes,
            hours=whole_hours,
            amount_ore=offer.prices.prepaid_hour_price_ore * whole_hours,
            unit_label=N_("Tidskonto"),
            expires_on=topup_expires_on(clock.now()),
        )
    raise ValidationFailed({"kind": N_("Ukjent bestilling.")})


async def outstanding_ore(company_id: int) -> int:
    """What the company owes for hourly support, ex. MVA."""
    return sum(charge.amount_ore for charge in await outstanding_charges(company_id))


async def outstanding_charges(company_id: int) -> list[HourlyCharge]:
    """Support time billed at the hourly rate and not paid yet (SPEC §2, alternative 3)."""
    return (
        await HourlyCharge.objects()
        .where(
            (HourlyCharge.company == company_id)
            & (HourlyCharge.status == ChargeStatus.outstanding.value)
        )
        .order_by(HourlyCharge.id)
    )


def topup_expires_on(paid_at: datetime.datetime) -> datetime.date:
    """A top-up's lot: valid one year from the day of payment, that day taken in Europe/Oslo."""
    return ledger.lot_expires_on(clock.oslo_date(paid_at))


HOURS_MESSAGE = N_("Velg et helt antall timer fra 1 til 200.")
TopupHours = field(int, ge=MIN_TOPUP_HOURS, le=MAX_TOPUP_HOURS, message=HOURS_MESSAGE)


class OrderForm(msgspec.Struct):
    """What the browser says it buys (SPEC §4: the server prices it). The kind decides which
    fields count: a top-up's hours, a plan's or top-up's products (checked by `quote`)."""

    kind: field(OrderKind, message=N_("Ukjent bestilling."))
    hours: field(str, max_length=12, message=HOURS_MESSAGE) = ""
    products: list[field(str, max_length=40)] = msgspec.field(default_factory=list)


def _whole_hours(value: str | int) -> int | None:
    try:
        return convert_field(value if isinstance(value, int) else str(value), TopupHours)
    except FieldError:
        return None


# --- placing an order and sending the customer to Checkout -------------------------------


async def place_order(
    user: User, form: Mapping[str, Any], payments: Payments | None = None
) -> Order:
    """A pending order at the server's price. Only the superuser buys (SPEC §1).

    A charges order may replace an older pending one; with `payments`, the replaced order's
    session is expired here, after the transaction (no network call holds the database)."""
    policy.require(user, "buy")
    order_form = convert(form, OrderForm)
    kind = order_form.kind.value
    if kind == OrderKind.charges.value:
        order, replaced = await _charges_order(user)
        if payments is not None:
            await run_after([partial(_retire_quietly, s) for s in replaced], payments)
        return order
    priced = await quote(user.company, kind, order_form.hours, order_form.products)
    order = Order(
        company=user.company,
        created_by=user.id,
        kind=priced.kind,
        hours=priced.hours,
        product_codes=",".join(priced.product_codes),
        amount_ore=priced.amount_ore,
        mva_ore=priced.mva_ore,
        total_ore=priced.total_ore,
    )
    await order.save()
    return order


async def _charges_order(user: User) -> tuple[Order, list[str]]:
    """The order that pays the company's outstanding hourly charges, each charge in at most
    one open order, so a charge can be paid once (SPEC §2, alternative 3).

    One write transaction (the company row locked on PostgreSQL), so two tabs meet one order:
    the pending charges order is reused while it holds exactly the charges that are free;
    otherwise it is cancelled and a new order takes them, priced from exactly the rows it
    linked. A charge whose payment is under way (processing) stays where it is. Returns the
    order and the Checkout Sessions of the orders it replaced, for the caller to expire."""
    company_id = user.company
    db = Order._meta.db
    async with write_transaction(db):
        if isinstance(db, PostgresEngine):
            await Company.select(Company.id).where(Company.id == company_id).lock_rows()
        pending = await (
            Order.objects()
            .where(
                (Order.company == company_id)
                & (Order.kind == OrderKind.charges.value)
                & (Order.status == OrderStatus.pending.value)
            )
            .order_by(Order.id)
        )
        pending_ids = {o.id for o in pending}
        rows = await (
            HourlyCharge.select(
                HourlyCharge.id,
                HourlyCharge.order,
                HourlyCharge.order.status.as_alias("order_status"),
            )
            .where(
                (HourlyCharge.company == company_id)
                & (HourlyCharge.status == ChargeStatus.outstanding.value)
            )
            .order_by(HourlyCharge.id)
        )
        free = [
            row["id"]
            for row in rows
            if row["order"] is None
            or row["order"] in pending_ids
            or row["order_status"] not in OPEN_STATUSES
        ]
        if not free:
            raise ValidationFailed({"form": N_("Det er ingen utestående beløp å betale.")})
        reuse = next(
            (
                o
                for o in reversed(pending)
                if [row["id"] for row in rows if row["order"] == o.id] == free
            ),
            None,
        )
        stale = [o.id for o in pending if o is not reuse]
        replaced: list[str] = []
        if stale:
            cancelled = (
                await Order.update(
                    {
                        Order.status: OrderStatus.cancelled.value,
                        Order.failure_reason: N_("Erstattet av en nyere bestilling."),
                    }
                )
                .where(Order.id.is_in(stale) & (Order.status == OrderStatus.pending.value))
                .returning(Order.stripe_session_id)
            )
            replaced = [row["stripe_session_id"] for row in cancelled if row["stripe_session_id"]]
        if reuse is not None:
            return reuse, replaced
        order = Order(
            company=company_id,
            created_by=user.id,
            kind=OrderKind.charges.value,
            amount_ore=0,
            mva_ore=0,
            total_ore=0,
        )
        await order.save()
        linked = (
            await HourlyCharge.update({HourlyCharge.order: order.id})
            .where(
                HourlyCharge.id.is_in(free)
                & (HourlyCharge.status == ChargeStatus.outstanding.value)
            )
            .returning(HourlyCharge.amount_ore)
        )
        order.amount_ore = sum(row["amount_ore"] for row in linked)
        order.mva_ore = mva_ore(order.amount_ore)
        order.total_ore = order.amount_ore + order.mva_ore
        await Order.update(
            {
                Order.amount_ore: order.amount_ore,
                Order.mva_ore: order.mva_ore,
                Order.total_ore: order.total_ore,
            }
        ).where(Order.id == order.id)
        return order, replaced


async def start_checkout(order: Order, payments: Payments, base_url: str) -> str:
    """A new Checkout Session for a pending order, for the order's amount; returns where to
    send the customer. The company's Stripe Customer is created once.

    Only the newest session can pay: an earlier one is expired through the API first. If that
    one turns out to be paid already, the order is fulfilled from it and the customer goes to
    the order's page instead of paying twice."""
    customer_id = await _customer_id(order.company, payments)
    previous = order.stripe_session_id
    order_page = f"/portal/orders/{order.id}"
    if previous and await _replace_session(order, previous, payments) == "complete":
        await refresh_order(order, previous, payments)
        return order_page
    made = await CheckoutSession.count().where(CheckoutSession.order == order.id)
    session = await payments.create_checkout_session(
        order_id=order.id,
        company_id=order.company,
        customer_id=customer_id,
        lines=[CheckoutLine(name=await describe(order), unit_amount_ore=order.total_ore)],
        success_url=f"{base_url}/portal/orders/{order.id}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base_url}/portal/orders/{order.id}",
        # One key per session of the order; a double click meets the same one.
        idempotency_key=f"order-{order.id}-checkout" + (f"-{made + 1}" if made else ""),
    )
    if not await record_session(order.id, session["id"]):
        # The order was cancelled or paid meanwhile: this session must not take money.
        await run_after([partial(_retire_quietly, session["id"])], payments)
        return order_page
    return session["url"]


async def _customer_id(company_id: int, payments: Payments) -> str:
    company = await Company.objects().get(Company.id == company_id)
    if company.stripe_customer_id:
        return company.stripe_customer_id
    superuser = await User.objects().get(
        (User.company == company.id) & (User.role == Role.superuser.value)
    )
    customer_id = await payments.create_customer(
        name=company.name, email=superuser.email, company_id=company.id
    )
    # Only the first writer stores it; the idempotency key made both calls one customer.
    await Company.update({Company.stripe_customer_id: customer_id}).where(
        (Company.id == company.id) & Company.stripe_customer_id.is_null()
    )
    return (await Company.objects().get(Company.id == company.id)).stripe_customer_id


async def record_session(order_id: int, session_id: str) -> bool:
    """Remember `session_id` as one of the order's own sessions and make it the current one.
    False if the order is no longer pending (the session is still recorded: if it is paid
    anyway, the payment is recognised and refunded)."""
    db = Order._meta.db
    try:
        async with write_transaction(db):
            if not await CheckoutSession.exists().where(CheckoutSession.session_id == session_id):
                await CheckoutSession(order=order_id, session_id=session_id).save()
            won = (
                await Order.update({Order.stripe_session_id: session_id})
                .where((Order.id == order_id) & (Order.status == OrderStatus.pending.value))
                .returning(Order.id)
            )
    except Exception as error:
        if not is_unique_violation(error):
            raise
        # A double click stored the same session at the same moment.
        return await Order.exists().where(
            (Order.id == order_id)
            & (Order.status == OrderStatus.pending.value)
            & (Order.stripe_session_id == session_id)
        )
    return bool(won)


async def _replace_session(order: Order, session_id: str, payments: Payments) -> str:
    """Retire the order's current session on the way to another outcome (a new session, or
    cancelled). It stops being current first, so the expiry this causes, whose webhook can
    come back before the order's next state is stored, does not expire the order. A session
    that was paid first (or cannot be reached) stays current: its later news must count."""
    await Order.update({Order.stripe_session_id: None}).where(
        (Order.id == order.id) & (Order.stripe_session_id == session_id)
    )
    try:
        status = await _retire_session(session_id, payments)
    except PaymentsError:
        await _reattach(order.id, session_id)
        raise
    if status == "complete":
        await _reattach(order.id, session_id)
    return status


async def _reattach(order_id: int, session_id: str) -> None:
    await Order.update({Order.stripe_session_id: session_id}).where(
        (Order.id == order_id) & Order.stripe_session_id.is_null()
    )


async def _retire_session(session_id: str, payments: Payments) -> str:
    """Make sure a session can no longer take money: expire it if it is open. Returns its
    status afterwards: "expired", or "complete" when it was paid first."""
    try:
        session = await payments.retrieve_checkout_session(session_id)
    except PaymentsError as error:
        if error.code == "resource_missing":
            return "expired"  # the provider has never heard of it (a restarted sandbox)
        raise
    if session.get("status") == "open":
        try:
            session = await payments.expire_checkout_session(session_id)
        except PaymentsError:
            # Expired or paid in between: ask what it is now.
            session = await payments.retrieve_checkout_session(session_id)
    return str(session.get("status"))


async def _retire_quietly(session_id: str, payments: Payments) -> None:
    await _retire_session(session_id, payments)


async def pay_order(user: User, order: Order, payments: Payments, base_url: str) -> str:
    """ "Betal" on a pending order: a new Checkout Session for the same order and amount (the
    old one expired). Returns where to send the customer; an order that is no longer pending
    (a double click, or paid meanwhile) sends them to its page."""
    policy.require(user, "buy", order)
    if order.status != OrderStatus.pending.value:
        return f"/portal/orders/{order.id}"
    return await start_checkout(order, payments, base_url)


async def cancel_order(user: User, order: Order, payments: Payments) -> Order:
    """ "Avbryt bestillingen": a pending order is cancelled and its session expired, so it can
    no longer be paid. If the session was paid in the meantime, the order is fulfilled
    instead. Anything but a pending order is left as it is (a double click)."""
    policy.require(user, "buy", order)
    if order.status != OrderStatus.pending.value:
        return order
    session_id = order.stripe_session_id
    if session_id and await _replace_session(order, session_id, payments) == "complete":
        return await refresh_order(order, session_id, payments)
    await Order.update(
        {
            Order.status: OrderStatus.cancelled.value,
            Order.failure_reason: N_("Du avbrøt bestillingen."),
        }
    ).where((Order.id == order.id) & (Order.status == OrderStatus.pending.value))
    return await Order.objects().get(Order.id == order.id)


def form_path(kind: str) -> str:
    """Where the customer chose what to buy (Checkout's cancel page)."""
    return {"plan": "/portal/plan", "topup": "/portal/topup"}.get(kind, "/portal/charges")


async def describe(order: Order) -> str:
    names = await catalog.product_names(order.product_codes.split(","))
    if order.kind == OrderKind.plan.value:
        return f"Fri support 6 mnd: {', '.join(names)}"
    if order.kind == OrderKind.topup.value:
        return f"Tidskonto {order.hours} t: {', '.join(names)}"
    return "Timebasert support"


async def get_order(user: User, order_id: int) -> Order:
    order = await Order.objects().get(Order.id == order_id)
    if order is None or not policy.can(user, "view_order", order):
        raise NotFound("no such order for this company")
    return order


# --- what the payment provider says ------------------------------------------------------


async def refresh_order(order: Order, session_id: str, payments: Payments) -> Order:
    """The success page and "Sjekk status": ask the provider about one of the order's own
    sessions and apply what it says, as its webhook would (paid: fulfil; expired: expired)."""
    if not await CheckoutSession.exists().where(
        (CheckoutSession.session_id == session_id) & (CheckoutSession.order == order.id)
    ):
        return order
    session = await payments.retrieve_checkout_session(session_id)
    event_type = "checkout.session.expired" if session.get("status") == "expired" else None
    await run_after(await _apply_session(session, None, event_type), payments)
    return await Order.objects().get(Order.id == order.id)


async def handle_event(event: Any, payments: Payments | None = None) -> str:
    """One verified webhook event. Returns what was done (for the log and the tests).

    A signed body that is not an event the portal can read raises MalformedEvent before
    anything is recorded. Calls to the provider that an event leads to (refunding a second
    payment, noting the charge that paid) run after its transaction, with `payments`."""
    kind, obj = _checked_event(event)
    if kind in SESSION_EVENTS:
        handler = _apply_session
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


async def run_after(after: Sequence[After], payments: Payments | None) -> None:
    """Calls to the provider that a change in the database led to, run once it is committed;
    each is best effort (what failed is logged, and flagged on its order where it matters)."""
    for step in after:
        if payments is None:
            logger.warning("no payment gateway here: skipped %r", step)
            continue
        try:
            await step(payments)
        except PaymentsError as error:
            logger.error("payment provider call failed (%r): %s", step, error)


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
    return number if 0 < number <= MAX_ORDER_ID else None


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


async def _flag(order_id: int, reason: str) -> None:
    """Show the order to admins as needing review (the staff company page), newest reason
    first, earlier ones kept as far as the column reaches."""
    row = await Order.select(Order.review_reason).where(Order.id == order_id).first()
    if row is None or reason in row["review_reason"]:
        return
    reasons = f"{reason} | {row['review_reason']}" if row["review_reason"] else reason
    await Order.update({Order.review_reason: reasons[:500]}).where(Order.id == order_id)


async def _apply_session(
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
            await _flag(
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
        (Order.id == order.id) & Order.status.is_in(list(OPEN_STATUSES))
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
            .where((Order.id == order.id) & Order.status.is_in(list(OPEN_STATUSES)))
            .returning(Order.id)
        )
        if not won:
            return await _paid_again(order, session, event_id)
        if payment_intent:
            after.append(partial(_record_charge, order.id, payment_intent))
        paid_on = clock.oslo_date(paid_at)
        codes = order.product_codes.split(",")
        if order.kind == OrderKind.plan.value:
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
            after += [partial(_refund_charge, row["id"]) for row in voided]
        elif order.kind == OrderKind.topup.value:
            await ledger.credit_lot(
                company_id=order.company,
                minutes=order.hours * 60,
                expires_on=topup_expires_on(paid_at),
                product_codes=codes,
                key=f"order:{order.id}",
                cause=ledger.Cause(type="order", id=str(order.id)),
                order_id=order.id,
            )
    return after


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
    await _flag(
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
        await _flag(order_id, f"Automatisk refusjon av {payment_intent} feilet: {error}")


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
    await _apply_refunded_total(order, charge["amount_refunded"])
    return []


async def _apply_refunded_total(order: Order, amount_refunded: int) -> None:
    """Stripe's running total refunded on the order's payment (incl. MVA). A refund of a
    top-up writes off the lot's unused minutes, up to the refunded share; a refund of a plan
    ends it (SPEC §4); a refund of a charges order marks the charges it paid back refunded.
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
        # Minutes matching the refunded share, rounded up; cumulative over partial refunds.
        share = -(-lot.minutes * refunded // order.total_ore)
        already = -sum(
            e.minutes
            for e in await ledger.entries_of_lot(lot.id)
            if e.kind == EntryKind.refund_write_off.value
        )
        if share > already:
            await ledger.write_off(
                lot_id=lot.id,
                max_minutes=share - already,
                kind=EntryKind.refund_write_off,
                key=f"refund:{order.id}:{refunded}",
                cause=cause,
            )
    elif order.kind == OrderKind.plan.value:
        await Agreement.update({Agreement.cancelled_on: clock.today()}).where(
            (Agreement.order == order.id) & Agreement.cancelled_on.is_null()
        )
    elif order.kind == OrderKind.charges.value:
        await _mark_charges_refunded(order, refunded)


def _with_mva(charge: HourlyCharge) -> int:
    return charge.amount_ore + mva_ore(charge.amount_ore)


async def _mark_charges_refunded(order: Order, refunded: int) -> None:
    """Money is money: a charge is paid or refunded, never half. A full refund marks every
    charge of the order refunded; a partial one whole charges, oldest first, as far as the
    refunded amount reaches beyond those already marked (a voided entry's refund)."""
    charges = await (
        HourlyCharge.objects()
        .where(
            (HourlyCharge.order == order.id)
            & HourlyCharge.status.is_in([ChargeStatus.paid.value, ChargeStatus.refunded.value])
        )
        .order_by(HourlyCharge.id)
    )
    paid = [c for c in charges if c.status == ChargeStatus.paid.value]
    if refunded >= order.total_ore:
        ids = [c.id for c in paid]
    else:
        left = refunded - sum(
            _with_mva(c) for c in charges if c.status == ChargeStatus.refunded.value
        )
        ids = []
        for charge in paid:
            if _with_mva(charge) <= left:
                ids.append(charge.id)
                left -= _with_mva(charge)
    if ids:
        await HourlyCharge.update({HourlyCharge.status: ChargeStatus.refunded.value}).where(
            HourlyCharge.id.is_in(ids) & (HourlyCharge.status == ChargeStatus.paid.value)
        )


# --- a voided time entry's charge (coverage.void_time_entry) -----------------------------


async def release_charge(time_entry_id: int) -> list[After]:
    """The hourly charge of a voided time entry, inside the void's transaction; returns the
    calls to the provider to make after it.

    Unpaid, the charge is cancelled and leaves the order that would have paid it: that order's
    amount no longer matches, so a pending one is cancelled and its session expired (the
    customer pays what is left from the charges page). Paid, it is marked refunded and its
    amount incl. MVA is refunded through the gateway, once per charge. A charge whose payment
    is under way stays in its order, cancelled, and is refunded if that payment succeeds."""
    charge = await HourlyCharge.objects().get(HourlyCharge.time_entry == time_entry_id)
    if charge is None:
        return []
    order = await Order.objects().get(Order.id == charge.order) if charge.order else None
    if charge.status == ChargeStatus.outstanding.value:
        under_way = order is not None and order.status == OrderStatus.processing.value
        changes: dict[Any, Any] = {HourlyCharge.status: ChargeStatus.cancelled.value}
        if not under_way:
            changes[HourlyCharge.order] = None
        await HourlyCharge.update(changes).where(
            (HourlyCharge.id == charge.id) & (HourlyCharge.status == ChargeStatus.outstanding.value)
        )
        if order is None or order.status != OrderStatus.pending.value:
            return []
        cancelled = (
            await Order.update(
                {
                    Order.status: OrderStatus.cancelled.value,
                    Order.failure_reason: N_(
                        "En timeføring i bestillingen ble annullert. "
                        "Betal det som er utestående på nytt."
                    ),
                }
            )
            .where((Order.id == order.id) & (Order.status == OrderStatus.pending.value))
            .returning(Order.stripe_session_id)
        )
        return [
            partial(_retire_quietly, row["stripe_session_id"])
            for row in cancelled
            if row["stripe_session_id"]
        ]
    if charge.status == ChargeStatus.paid.value:
        won = (
            await HourlyCharge.update({HourlyCharge.status: ChargeStatus.refunded.value})
            .where(
                (HourlyCharge.id == charge.id) & (HourlyCharge.status == ChargeStatus.paid.value)
            )
            .returning(HourlyCharge.id)
        )
        return [partial(_refund_charge, charge.id)] if won else []
    return []


async def _refund_charge(charge_id: int, payments: Payments) -> None:
    """Pay back one charge (incl. MVA) from the payment of its order; the order then shows
    the refund."""
    charge = await HourlyCharge.objects().get(HourlyCharge.id == charge_id)
    order = await Order.objects().get(Order.id == charge.order) if charge.order else None
    if order is None or not order.stripe_payment_intent_id:
        logger.error("charge %s is marked refunded but has no payment to refund", charge_id)
        return
    amount = min(_with_mva(charge), order.total_ore - order.refunded_ore)
    if amount <= 0:
        return
    try:
        refund = await payments.refund(
            payment_intent=order.stripe_payment_intent_id,
            amount_ore=amount,
            key=f"hourly-charge-{charge.id}-refund",
        )
        paid_back = await payments.retrieve_charge(refund["charge"])
    except PaymentsError as error:
        logger.error("refund of charge %s failed: %s", charge_id, error)
        await _flag(order.id, f"Refusjon av timeføring (belastning {charge.id}) feilet: {error}")
        return
    async with write_transaction(Order._meta.db):
        await _apply_refunded_total(order, int(paid_back["amount_refunded"]))


# --- reading -----------------------------------------------------------------------------


async def orders_needing_review(company_id: int) -> list[Order]:
    """Orders a payment did not match (or paid twice): for admins, on the company page."""
    return await (
        Order.objects()
        .where((Order.company == company_id) & (Order.review_reason != ""))
        .order_by(Order.id, ascending=False)
    )


async def orders_of(company_id: int, limit: int = 20) -> list[Order]:
    return (
        await Order.objects()
        .where(Order.company == company_id)
        .order_by(Order.id, ascending=False)
        .limit(limit)
    )


def recent_orders_json(engine, company: str, limit: int) -> str:
    """The company's latest `limit` orders, newest first, as one column of a page's single
    query (services/account.py); `company` is an SQL expression. Read back with
    `orders_from_json`."""
    select = (
        "SELECT o.id, o.kind, o.status, o.amount_ore, o.total_ore FROM payment_order AS o"
        f" WHERE o.company = {company} ORDER BY o.id DESC LIMIT {int(limit)}"
    )
    return json_rows(
        engine, select, ("id", "kind", "status", "amount_ore", "total_ore"), order_by="id DESC"
    )


@dataclass(frozen=True)
class OrderLine:
    """An order as lists show it (a read, not a row to save)."""

    id: int
    kind: str
    status: str
    amount_ore: int
    total_ore: int


def orders_from_json(rows: list[dict]) -> list[OrderLine]:
    return [OrderLine(**row) for row in rows]


def outstanding_ore_sql(company: str) -> str:
    """`outstanding_ore` (hourly charges not paid yet, ex. MVA) as a scalar subquery of a
    page's single query."""
    return (
        "(SELECT coalesce(sum(h.amount_ore), 0) FROM hourly_charge AS h"
        f" WHERE h.company = {company} AND h.status = '{ChargeStatus.outstanding.value}')"
    )


async def agreement_for(order: Order) -> Agreement | None:
    return await Agreement.objects().get(Agreement.order == order.id)


async def lot_for(order: Order) -> Lot | None:
    return await Lot.objects().get(Lot.order == order.id)


async def charges_of(company_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """Hourly charges with the support they are for, newest first."""
    return (
        await HourlyCharge.select(
            HourlyCharge.id,
            HourlyCharge.minutes,
            HourlyCharge.amount_ore,
            HourlyCharge.status,
            HourlyCharge.time_entry.performed_on.as_alias("performed_on"),
            HourlyCharge.time_entry.ticket.id.as_alias("ticket_id"),
            HourlyCharge.time_entry.ticket.subject.as_alias("ticket_subject"),
        )
        .where(HourlyCharge.company == company_id)
        .order_by(HourlyCharge.id, ascending=False)
        .limit(limit)
    )
