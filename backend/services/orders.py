"""Orders (SPEC §4): placing one at the server's price, its Checkout Sessions (each one the
portal creates is recorded; the newest is the order's current one), paying again ("Betal") or
cancelling ("Avbryt bestillingen"), and reading orders for the customer's pages."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec

from backend.config import Seller
from backend.db import fetch, from_json, is_unique_violation, json_rows, write_transaction
from backend.i18n import N_, gettext
from backend.services import (
    agreements,
    business,
    catalog,
    charges,
    companies,
    fulfilment,
    policy,
    pricing,
    product_additions,
    validation,
)
from backend.services.errors import NotFound
from backend.services.payments import CheckoutLine, Payments, PaymentsError, run_after
from backend.services.validation import convert, field
from backend.tables import (
    Agreement,
    CheckoutSession,
    Company,
    Lot,
    Order,
    OrderKind,
    OrderStatus,
    Role,
    User,
)

STATUS_LABELS = {
    OrderStatus.pending.value: N_("Venter på betaling"),
    OrderStatus.processing.value: N_("Betalingen behandles"),
    OrderStatus.paid.value: N_("Betalt"),
    OrderStatus.failed.value: N_("Betalingen feilet"),
    OrderStatus.expired.value: N_("Utløpt"),
    OrderStatus.refunded.value: N_("Refundert"),
    OrderStatus.cancelled.value: N_("Avbrutt"),
}
OPEN_STATUSES = (OrderStatus.pending.value, OrderStatus.processing.value)


FINAL_STATUSES = (
    OrderStatus.paid.value,
    OrderStatus.failed.value,
    OrderStatus.expired.value,
    OrderStatus.refunded.value,
    OrderStatus.cancelled.value,
)


class PriceQuery(msgspec.Struct):
    """What a plan or top-up form holds, for its price before payment (a query string)."""

    kind: field(str, max_length=20) = OrderKind.plan.value
    hours: field(str, max_length=12) = ""
    products: list[field(str, max_length=40)] = msgspec.field(default_factory=list)
    agreement: validation.RecordId = 0  # a plan addition's plan period


class OrderForm(msgspec.Struct):
    """What the browser says it buys (SPEC §4: the server prices it). The kind decides which
    fields count: a top-up's hours, a plan's or top-up's products (checked by `pricing.quote`),
    a plan addition's plan period and products (services/product_additions.py)."""

    kind: field(OrderKind, message=N_("Ukjent bestilling."))
    hours: field(str, max_length=12, message=pricing.HOURS_MESSAGE) = ""
    products: list[field(str, max_length=40)] = msgspec.field(default_factory=list)
    agreement: field(int, ge=1, le=validation.MAX_ID, message=pricing.NO_PLAN_MESSAGE) = 0


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
        order, replaced = await charges.charges_order(user)
        if payments is not None:
            await run_after([partial(retire_quietly, s) for s in replaced], payments)
        return order
    if kind == OrderKind.plan_addition.value:
        return await product_additions.place_plan_addition(
            user, order_form.agreement, order_form.products
        )
    priced = await pricing.quote(user.company, kind, order_form.hours, order_form.products)
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
        await run_after([partial(retire_quietly, session["id"])], payments)
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


async def retire_quietly(session_id: str, payments: Payments) -> None:
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
    return {
        "plan": "/portal/plan",
        "plan_addition": "/portal/plan/products",
        "topup": "/portal/topup",
    }.get(kind, "/portal/charges")


def description(kind: str, hours: int, product_names: list[str]) -> str:
    """What an order bought, in the reader's language (a receipt's line, Checkout's item)."""
    if kind == OrderKind.charges.value:
        return gettext("Timebasert support")
    products = ", ".join(product_names)
    if kind == OrderKind.plan.value:
        return gettext("Fri support 6 mnd: %(products)s") % {"products": products}
    if kind == OrderKind.plan_addition.value:
        return gettext("Fri support, lagt til for resten av perioden: %(products)s") % {
            "products": products
        }
    return gettext("Tidskonto %(hours)s t: %(products)s") % {"hours": hours, "products": products}


async def describe(order: Order) -> str:
    codes = [code for code in order.product_codes.split(",") if code]
    return description(order.kind, order.hours, await catalog.product_names(codes))


HISTORY_PAGE = 25


class HistoryQuery(msgspec.Struct):
    older_than: validation.RecordId = 0  # the last order shown: the page starts below it


class HistoryLine(msgspec.Struct, frozen=True):
    """An order in the customer's order history."""

    id: int
    kind: str
    status: str
    hours: int
    product_codes: str
    total_ore: int  # incl. MVA
    created_at: datetime.datetime
    paid_at: datetime.datetime | None


@dataclass(frozen=True)
class History:
    lines: list[HistoryLine]
    product_names: dict[str, str]
    older_than: int  # the id the next page starts below, 0 on the last page

    def describe(self, line: HistoryLine) -> str:
        codes = [code for code in line.product_codes.split(",") if code]
        return description(line.kind, line.hours, [self.product_names.get(c, c) for c in codes])


async def history(company_id: int, older_than: int = 0) -> History:
    """The company's orders, newest first, HISTORY_PAGE at a time below the id `older_than`
    (keyset: a new order never shifts the pages), with the catalog's names: one statement."""
    engine = Order._meta.db
    [row] = await fetch(Order, _history_sql(engine), company_id, older_than, older_than)
    lines = from_json(row["orders"], list[HistoryLine])
    more = len(lines) > HISTORY_PAGE
    lines = lines[:HISTORY_PAGE]
    return History(
        lines=lines,
        product_names={p["code"]: p["name"] for p in from_json(row["products"])},
        older_than=lines[-1].id if more else 0,
    )


@functools.cache
def _history_sql(engine) -> str:
    orders = json_rows(
        engine,
        f"SELECT {', '.join(HistoryLine.__struct_fields__)} FROM payment_order"
        " WHERE company = {} AND ({} = 0 OR id < {})"
        f" ORDER BY id DESC LIMIT {HISTORY_PAGE + 1}",
        HistoryLine.__struct_fields__,
        order_by="id DESC",
    )
    return f"SELECT {orders} AS orders, {catalog.products_json(engine)} AS products"


async def get_order(user: User, order_id: int) -> Order:
    order = await Order.objects().get(Order.id == order_id)
    if order is None or not policy.can(user, "view_order", order):
        raise NotFound("no such order for this company")
    return order


def has_receipt(order: Order | HistoryLine) -> bool:
    """A receipt is for money received: an order once paid (refunded later or not). Before
    that there is nothing to give a receipt for."""
    return order.paid_at is not None


@dataclass(frozen=True)
class Receipt:
    """What a receipt (kvittering) says, on the page and in the PDF."""

    order: Order
    description: str
    agreement: Agreement | agreements.PlanPeriod | None
    lot: Lot | None
    buyer: Company
    seller: Seller


async def receipt(user: User, order_id: int, seller: Seller | None = None) -> Receipt:
    """The receipt for an order: only for a paid order of the user's own company. The seller
    is the business's settings' (services/business.py) unless given."""
    order = await get_order(user, order_id)
    if not has_receipt(order):
        raise NotFound("no receipt for an order not paid")
    if seller is None:
        seller = (await business.current()).seller
    return Receipt(
        order=order,
        description=await describe(order),
        agreement=await agreement_for(order),
        lot=await lot_for(order),
        buyer=await companies.get_company(order.company),
        seller=seller,
    )


async def refresh_order(order: Order, session_id: str, payments: Payments) -> Order:
    """The success page and "Sjekk status": ask the provider about one of the order's own
    sessions and apply what it says, as its webhook would (paid: fulfil; expired: expired)."""
    if not await CheckoutSession.exists().where(
        (CheckoutSession.session_id == session_id) & (CheckoutSession.order == order.id)
    ):
        return order
    session = await payments.retrieve_checkout_session(session_id)
    event_type = "checkout.session.expired" if session.get("status") == "expired" else None
    await run_after(await fulfilment.apply_session(session, None, event_type), payments)
    return await Order.objects().get(Order.id == order.id)


async def orders_needing_review(company_id: int) -> list[Order]:
    """Orders a payment did not match (or paid twice): for admins, on the company page."""
    return await (
        Order.objects()
        .where((Order.company == company_id) & (Order.review_reason != ""))
        .order_by(Order.id, ascending=False)
    )


def recent_orders_json(engine, company: str, limit: int) -> str:
    """The company's latest `limit` orders, newest first, as one column of a page's single
    query (services/overview.py); `company` is an SQL expression. Read back with
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


async def agreement_for(order: Order) -> Agreement | agreements.PlanPeriod | None:
    """The plan period a paid plan order made; for a plan addition, the days its products
    were added for (services/product_additions.py)."""
    if order.kind == OrderKind.plan_addition.value:
        return await product_additions.added_period(order)
    if order.kind != OrderKind.plan.value:
        return None
    return await Agreement.objects().get(Agreement.order == order.id)


async def lot_for(order: Order) -> Lot | None:
    """The lot a paid top-up order made."""
    if order.kind != OrderKind.topup.value:
        return None
    return await Lot.objects().get(Lot.order == order.id)
