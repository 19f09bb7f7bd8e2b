"""Orders and payments (SPEC §2, §4): what a purchase costs, checkout, and fulfilment exactly once.

The server computes every amount; the browser only says what to buy. An order is fulfilled
exactly once — from a verified webhook or from the success page's look at the session, whichever
comes first — because the order's status moves from pending/processing to paid with one
conditional UPDATE, in the same transaction as the plan or lot it creates and the event id it
records.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.db import is_unique_violation, write_transaction
from backend.i18n import N_
from backend.services import agreements, catalog, clock, ledger
from backend.services.errors import NotAllowed, ValidationFailed
from backend.services.money import mva_ore
from backend.services.payments import CheckoutLine, Payments
from backend.services.validation import whole_number
from backend.tables import (
    Agreement,
    ChargeStatus,
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

MIN_TOPUP_HOURS = 1
MAX_TOPUP_HOURS = 200
OPEN_STATUSES = (OrderStatus.pending.value, OrderStatus.processing.value)
FINAL_STATUSES = (
    OrderStatus.paid.value,
    OrderStatus.failed.value,
    OrderStatus.expired.value,
    OrderStatus.refunded.value,
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
    """The price of a plan or a top-up, from the catalog, or every reason it cannot be bought."""
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
    if kind == OrderKind.charges.value:
        errors.pop("products", None)  # paying charges buys no product
    if kind == OrderKind.plan.value:
        if errors:
            raise ValidationFailed(errors)
        starts_on, ends_on = agreements.plan_period(
            await agreements.next_plan_start(company_id, today)
        )
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
            errors["hours"] = N_("Velg et helt antall timer fra 1 til 200.")
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
    if kind == OrderKind.charges.value:
        outstanding = await outstanding_charges(company_id)
        if not outstanding:
            raise ValidationFailed({"form": N_("Det er ingen utestående beløp å betale.")})
        return Quote(
            kind=kind,
            product_codes=(),
            hours=0,
            amount_ore=sum(charge.amount_ore for charge in outstanding),
            unit_label=N_("Timebasert support"),
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
    """A lot is valid one year from the day of payment, that day taken in Europe/Oslo."""
    return agreements.add_years(clock.oslo_date(paid_at), 1)


def _whole_hours(value: str) -> int | None:
    return whole_number(value, MIN_TOPUP_HOURS, MAX_TOPUP_HOURS)


async def place_order(user: User, form: Mapping[str, Any]) -> Order:
    """A pending order at the server's price. Only the superuser buys (SPEC §1)."""
    if user.role != Role.superuser.value or user.company is None:
        raise NotAllowed("only the superuser buys")
    priced = await quote(
        user.company, str(form.get("kind", "")), form.get("hours", ""), form.get("products", [])
    )
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
    if order.kind == OrderKind.charges.value:
        # The charges this order pays: the outstanding ones it was priced from.
        await HourlyCharge.update({HourlyCharge.order: order.id}).where(
            (HourlyCharge.company == user.company)
            & (HourlyCharge.status == ChargeStatus.outstanding.value)
        )
    return order


async def start_checkout(order: Order, payments: Payments, base_url: str) -> str:
    """Create (once) the company's Stripe Customer and the order's Checkout Session; returns
    the URL to send the customer to."""
    company = await Company.objects().get(Company.id == order.company)
    if not company.stripe_customer_id:
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
        company = await Company.objects().get(Company.id == company.id)
    session = await payments.create_checkout_session(
        order_id=order.id,
        customer_id=company.stripe_customer_id,
        lines=[CheckoutLine(name=await describe(order), unit_amount_ore=order.total_ore)],
        success_url=f"{base_url}/portal/orders/{order.id}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base_url}{form_path(order.kind)}",
    )
    await Order.update({Order.stripe_session_id: session["id"]}).where(Order.id == order.id)
    return session["url"]


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
    order = await Order.objects().get((Order.id == order_id) & (Order.company == user.company))
    if order is None:
        raise NotAllowed("no such order for this company")
    return order


async def fulfil_checkout(session_id: str, payments: Payments) -> Order | None:
    """Used by the success page: look at the session and fulfil the order if it is paid."""
    session = await payments.retrieve_checkout_session(session_id)
    return await _apply_session(session, event_id=None)


async def handle_event(event: Mapping[str, Any]) -> str:
    """One verified webhook event. Returns what was done (for the log and the tests)."""
    kind = event["type"]
    obj = event["data"]["object"]
    if kind in (
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    ):
        handler = _apply_session
    elif kind == "charge.refunded":
        handler = _apply_refund
    else:
        return "ignored"
    try:
        async with write_transaction(Order._meta.db):
            await StripeEvent(event_id=event["id"], type=kind).save()
            await handler(obj, event_id=event["id"], event_type=kind)
    except Exception as error:
        if is_unique_violation(error) and await StripeEvent.exists().where(
            StripeEvent.event_id == event["id"]
        ):
            return "duplicate"
        raise
    return "handled"


async def _order_for(session: Mapping[str, Any]) -> Order | None:
    order = await Order.objects().get(Order.stripe_session_id == session["id"])
    if order is None:
        order_id = (session.get("metadata") or {}).get("order_id")
        if order_id and str(order_id).isdigit():
            order = await Order.objects().get(Order.id == int(order_id))
    return order


async def _apply_session(
    session: Mapping[str, Any], event_id: str | None, event_type: str | None = None
) -> Order | None:
    order = await _order_for(session)
    if order is None:
        return None
    if event_type == "checkout.session.async_payment_failed":
        await _set_status(order, OrderStatus.failed, N_("Betalingen ble avvist av banken."))
    elif event_type == "checkout.session.expired":
        await _set_status(order, OrderStatus.expired, N_("Betalingen ble ikke fullført i tide."))
    elif session.get("payment_status") == "paid":
        await _fulfil(order, session)
    elif session.get("status") == "complete":
        # A delayed payment method: paid later (async_payment_succeeded) or not.
        await Order.update({Order.status: OrderStatus.processing.value}).where(
            (Order.id == order.id) & (Order.status == OrderStatus.pending.value)
        )
    return await Order.objects().get(Order.id == order.id)


async def _set_status(order: Order, status: OrderStatus, reason: str) -> None:
    await Order.update({Order.status: status.value, Order.failure_reason: reason}).where(
        (Order.id == order.id) & Order.status.is_in(list(OPEN_STATUSES))
    )


async def _fulfil(order: Order, session: Mapping[str, Any]) -> None:
    async with write_transaction(Order._meta.db):
        paid_at = clock.now()
        won = (
            await Order.update(
                {
                    Order.status: OrderStatus.paid.value,
                    Order.paid_at: paid_at,
                    Order.stripe_payment_intent_id: session.get("payment_intent"),
                    Order.failure_reason: "",
                }
            )
            .where((Order.id == order.id) & Order.status.is_in(list(OPEN_STATUSES)))
            .returning(Order.id)
        )
        if not won:
            return  # fulfilled already (or final): exactly once
        paid_on = clock.oslo_date(paid_at)
        codes = order.product_codes.split(",")
        if order.kind == OrderKind.plan.value:
            starts_on, ends_on = agreements.plan_period(
                await agreements.next_plan_start(order.company, paid_on)
            )
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


async def _apply_refund(
    charge: Mapping[str, Any], event_id: str | None, event_type: str | None = None
) -> None:
    """A refund of a top-up writes off the lot's unused minutes, up to the refunded share; a
    refund of a plan ends it (SPEC §4)."""
    order = await Order.objects().get(
        Order.stripe_payment_intent_id == charge.get("payment_intent")
    )
    if order is None:
        return
    refunded = min(int(charge.get("amount_refunded") or 0), order.total_ore)
    if refunded <= order.refunded_ore:
        return  # an older event, out of order
    status = OrderStatus.refunded.value if refunded >= order.total_ore else order.status
    await Order.update({Order.refunded_ore: refunded, Order.status: status}).where(
        Order.id == order.id
    )
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


async def orders_of(company_id: int, limit: int = 20) -> list[Order]:
    return (
        await Order.objects()
        .where(Order.company == company_id)
        .order_by(Order.id, ascending=False)
        .limit(limit)
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
