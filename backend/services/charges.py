"""Hourly charges (SPEC §2, alternative 3): support billed at the hourly rate, outstanding
until the superuser pays them through one charges order, each charge in at most one open order
so it is paid once; voiding its time entry releases or refunds it."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from piccolo.query.functions.aggregate import Sum

from backend.db import lock_row, write_transaction
from backend.i18n import N_
from backend.services import fulfilment, orders
from backend.services.errors import ValidationFailed
from backend.services.money import mva_ore
from backend.services.payments import After, Payments, PaymentsError
from backend.tables import (
    ChargeStatus,
    Company,
    HourlyCharge,
    Order,
    OrderKind,
    OrderStatus,
    User,
)

logger = logging.getLogger("portal.charges")


async def outstanding_ore(company_id: int) -> int:
    """What the company owes for support billed at the hourly rate and not paid yet, ex. MVA
    (SPEC §2, alternative 3)."""
    rows = await HourlyCharge.select(Sum(HourlyCharge.amount_ore).as_alias("total")).where(
        (HourlyCharge.company == company_id)
        & (HourlyCharge.status == ChargeStatus.outstanding.value)
    )
    return int(rows[0]["total"] or 0) if rows else 0


async def charges_order(user: User) -> tuple[Order, list[str]]:
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
        await lock_row(Company, company_id)
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
            or row["order_status"] not in orders.OPEN_STATUSES
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


def _with_mva(charge: HourlyCharge) -> int:
    return charge.amount_ore + mva_ore(charge.amount_ore)


async def mark_charges_refunded(order: Order, refunded: int) -> None:
    """Mark refunded the charges `charges_refunded_by` the order's refunded total."""
    ids = [charge.id for charge in await charges_refunded_by(order, refunded)]
    if ids:
        await HourlyCharge.update({HourlyCharge.status: ChargeStatus.refunded.value}).where(
            HourlyCharge.id.is_in(ids) & (HourlyCharge.status == ChargeStatus.paid.value)
        )


async def charges_refunded_by(order: Order, refunded: int) -> list[HourlyCharge]:
    """The paid charges of a charges order that a refunded total of `refunded` (incl. MVA)
    makes refunded. Money is money: a charge is paid or refunded, never half. A full refund
    takes every charge of the order; a partial one whole charges, oldest first, as far as the
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
        return paid
    left = refunded - sum(_with_mva(c) for c in charges if c.status == ChargeStatus.refunded.value)
    taken = []
    for charge in paid:
        if _with_mva(charge) <= left:
            taken.append(charge)
            left -= _with_mva(charge)
    return taken


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
            partial(orders.retire_quietly, row["stripe_session_id"])
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
        return [partial(refund_charge, charge.id)] if won else []
    return []


async def refund_charge(charge_id: int, payments: Payments) -> None:
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
        await fulfilment.flag(
            order.id, f"Refusjon av timeføring (belastning {charge.id}) feilet: {error}"
        )
        return
    async with write_transaction(Order._meta.db):
        await fulfilment.apply_refunded_total(order, int(paid_back["amount_refunded"]))


def outstanding_ore_sql(company: str) -> str:
    """`outstanding_ore` (hourly charges not paid yet, ex. MVA) as a scalar subquery of a
    page's single query."""
    return (
        "(SELECT coalesce(sum(h.amount_ore), 0) FROM hourly_charge AS h"
        f" WHERE h.company = {company} AND h.status = '{ChargeStatus.outstanding.value}')"
    )


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
