"""Pricing, orders and fulfilment rules (SPEC §2, §4), without the payment provider."""

from __future__ import annotations

import asyncio
import datetime
import itertools

import pytest

from backend.services import agreements, catalog, clock, fulfilment, ledger, orders, pricing
from backend.services.errors import NotAllowed, ValidationFailed
from backend.services.money import format_nok, mva_ore
from backend.tables import Agreement, Lot, Order, Role, User
from tests.support import make_company


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def superuser(company_id: int) -> User:
    return await User.objects().get((User.company == company_id) & (User.role == Role.superuser))


@pytest.mark.parametrize(
    ("amount", "mva"), [(100, 25), (1, 0), (2, 1), (3, 1), (6, 2), (450_000, 112_500)]
)
def test_mva_is_25_percent_rounded_half_up(amount, mva):
    assert mva_ore(amount) == mva


def test_nok_formatting():
    assert format_nok(123_450) == "1\xa0234,50\xa0kr"
    assert format_nok(5) == "0,05\xa0kr"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime.date(2026, 1, 1), datetime.date(2026, 6, 30)),
        (datetime.date(2026, 8, 31), datetime.date(2027, 2, 27)),  # 28.02 is the 6-month day
        (datetime.date(2027, 9, 1), datetime.date(2028, 2, 29)),
    ],
)
def test_plan_period_is_six_calendar_months_minus_a_day(start, end):
    assert agreements.plan_period(start) == (start, end)


async def test_plan_price_is_per_product_from_the_catalog():
    company_id, _ = await make_company()
    offer = await catalog.current_offer()
    quote = await pricing.quote(company_id, "plan", "", ["inventor", "vault"])
    assert quote.amount_ore == 2 * offer.prices.plan_price_per_product_ore
    assert quote.total_ore == quote.amount_ore + mva_ore(quote.amount_ore)


async def test_topup_price_is_per_whole_hour():
    company_id, _ = await make_company()
    offer = await catalog.current_offer()
    quote = await pricing.quote(company_id, "topup", "7", ["inventor"])
    assert quote.hours == 7
    assert quote.amount_ore == 7 * offer.prices.prepaid_hour_price_ore


@pytest.mark.parametrize("hours", ["0", "201", "2.5", "-1", "abc", "", "1e2"])
async def test_topup_hours_outside_1_to_200_are_refused(hours):
    company_id, _ = await make_company()
    with pytest.raises(ValidationFailed) as refused:
        await pricing.quote(company_id, "topup", hours, ["inventor"])
    assert "hours" in refused.value.errors


@pytest.mark.parametrize("products", [[], ["photoshop"], ["inventor", "nope"]])
async def test_unknown_or_missing_products_are_refused(products):
    company_id, _ = await make_company()
    with pytest.raises(ValidationFailed) as refused:
        await pricing.quote(company_id, "plan", "", products)
    assert "products" in refused.value.errors


async def test_only_the_superuser_places_orders():
    company_id, _ = await make_company()
    member = User(
        email=f"m{company_id}@example.no",
        name="M",
        role=Role.member.value,
        company=company_id,
        password_hash="x",
    )
    await member.save()
    with pytest.raises(NotAllowed):
        await orders.place_order(member, {"kind": "plan", "products": ["inventor"]})
    assert not await Order.exists().where(Order.company == company_id)


async def paid_event(
    order: Order,
    event_id: str,
    kind: str = "checkout.session.completed",
    payment_status: str = "paid",
) -> dict:
    return {
        "id": event_id,
        "type": kind,
        "data": {
            "object": {
                "id": f"cs_{order.id}",
                "object": "checkout.session",
                "payment_status": payment_status,
                "status": "complete",
                "payment_intent": f"pi_{order.id}",
                "amount_total": order.total_ore,
                "currency": "nok",
                "client_reference_id": str(order.company),
                "metadata": {"order_id": str(order.id)},
            }
        },
    }


async def placed(company_id: int, **form) -> Order:
    """A pending order with a Checkout Session of its own, as start_checkout leaves it."""
    order = await orders.place_order(await superuser(company_id), form)
    assert await orders.record_session(order.id, f"cs_{order.id}")
    return await Order.objects().get(Order.id == order.id)


async def test_renewal_starts_the_day_after_the_current_plan_ends():
    company_id, _ = await make_company()
    first = await placed(company_id, kind="plan", products=["inventor"])
    second = await placed(company_id, kind="plan", products=["inventor"])
    assert await fulfilment.handle_event(await paid_event(first, f"evt_a{first.id}")) == "handled"
    assert await fulfilment.handle_event(await paid_event(second, f"evt_b{second.id}")) == "handled"
    plans = (
        await Agreement.objects()
        .where(Agreement.company == company_id)
        .order_by(Agreement.starts_on)
    )
    assert len(plans) == 2
    assert plans[1].starts_on == plans[0].ends_on + datetime.timedelta(days=1)
    assert plans[1].ends_on == agreements.plan_period(plans[1].starts_on)[1]


async def test_plans_paid_at_the_same_moment_follow_each_other():
    """Two plan orders of one company paid at once (two tabs): the periods never overlap."""
    company_id, _ = await make_company()
    plan_orders = [await placed(company_id, kind="plan", products=["inventor"]) for _ in range(3)]
    events = [await paid_event(o, f"evt_same{o.id}") for o in plan_orders]
    results = await asyncio.gather(*(fulfilment.handle_event(event) for event in events))
    assert results == ["handled"] * 3
    plans = (
        await Agreement.objects()
        .where(Agreement.company == company_id)
        .order_by(Agreement.starts_on)
    )
    assert len(plans) == 3
    for before, after in itertools.pairwise(plans):
        assert after.starts_on == before.ends_on + datetime.timedelta(days=1)


PAID_EVENTS = [
    # The delayed method's "completed" arrives unpaid, then "async_payment_succeeded" paid;
    # webhooks may come in any order, and the card's "completed" is paid at once.
    ("checkout.session.completed", "unpaid"),
    ("checkout.session.completed", "paid"),
    ("checkout.session.async_payment_succeeded", "paid"),
]


@pytest.mark.parametrize("kind", ["topup", "plan"])
@pytest.mark.parametrize("order_of_events", list(itertools.permutations(PAID_EVENTS)))
async def test_any_order_of_checkout_events_fulfils_once(kind, order_of_events):
    company_id, _ = await make_company()
    order = await placed(company_id, kind=kind, hours="5", products=["inventor"])
    for n, (event_type, payment_status) in enumerate(order_of_events):
        event = await paid_event(order, f"evt_{n}_{order.id}", event_type, payment_status)
        await fulfilment.handle_event(event)
    assert (await Order.objects().get(Order.id == order.id)).status == "paid"
    if kind == "topup":
        assert await Lot.count().where(Lot.order == order.id) == 1
        assert await ledger.balance(company_id, clock.today()) == 300
        lots = await Lot.objects().where(Lot.company == company_id)
        sums = await ledger.entries_sum_by_lot(company_id)
        assert all(sums[lot.id] == lot.remaining_minutes for lot in lots)
    else:
        assert await Agreement.count().where(Agreement.order == order.id) == 1


async def test_same_event_twice_is_handled_once():
    company_id, _ = await make_company()
    order = await placed(company_id, kind="topup", hours="2", products=["inventor"])
    event = await paid_event(order, f"evt_dup{order.id}")
    assert await fulfilment.handle_event(event) == "handled"
    assert await fulfilment.handle_event(event) == "duplicate"
    assert await Lot.count().where(Lot.order == order.id) == 1


async def test_pending_delayed_payment_then_failure_credits_nothing():
    company_id, _ = await make_company()
    order = await placed(company_id, kind="topup", hours="2", products=["inventor"])
    await fulfilment.handle_event(
        await paid_event(order, f"evt_p{order.id}", payment_status="unpaid")
    )
    assert (await Order.objects().get(Order.id == order.id)).status == "processing"
    await fulfilment.handle_event(
        await paid_event(
            order, f"evt_f{order.id}", "checkout.session.async_payment_failed", "unpaid"
        )
    )
    failed = await Order.objects().get(Order.id == order.id)
    assert failed.status == "failed" and failed.failure_reason
    assert not await Lot.exists().where(Lot.order == order.id)


async def test_refund_of_a_partly_used_topup_writes_off_only_what_is_left():
    company_id, _ = await make_company()
    order = await placed(company_id, kind="topup", hours="5", products=["inventor"])
    await fulfilment.handle_event(await paid_event(order, f"evt_r{order.id}"))
    today = clock.today()
    await ledger.debit(
        company_id=company_id,
        minutes=120,
        on_date=today,
        key=f"use{order.id}",
        cause=ledger.Cause(type="time_entry"),
    )
    refund = {
        "id": f"evt_refund{order.id}",
        "type": "charge.refunded",
        "data": {
            "object": {
                "id": "ch_1",
                "object": "charge",
                "payment_intent": f"pi_{order.id}",
                "amount_refunded": order.total_ore,
            }
        },
    }
    await fulfilment.handle_event(refund)
    assert await ledger.balance(company_id, today) == 0
    lot = await Lot.objects().get(Lot.order == order.id)
    entries = await ledger.entries_of_lot(lot.id)
    assert [(e.kind, e.minutes) for e in entries] == [
        ("credit", 300),
        ("debit", -120),
        ("refund_write_off", -180),
    ]
    assert (await Order.objects().get(Order.id == order.id)).status == "refunded"


@pytest.mark.parametrize("share, left", [(1, 0), (2, 120)])
async def test_a_void_after_a_refund_gives_back_only_what_was_not_paid_back(share, left):
    """4 h bought, 90 min used, then 1/share of the payment refunded, then the 90 minutes'
    entry voided: a full refund leaves nothing to use; half a refund leaves the half still paid."""
    company_id, _ = await make_company()
    order = await placed(company_id, kind="topup", hours="4", products=["inventor"])
    await fulfilment.handle_event(await paid_event(order, f"evt_v{order.id}"))
    today = clock.today()
    await ledger.debit(
        company_id=company_id,
        minutes=90,
        on_date=today,
        # Keys of this test's own, never coverage's "time:…" or "void:<time entry id>": as
        # "void:<order id>" it took the key of a later test's void of the time entry with the
        # same id, which then replayed this operation and gave nothing back.
        key=f"refund-then-void:{order.id}:debit",
        cause=ledger.Cause(type="time_entry"),
    )
    refund = {
        "id": f"evt_vr{order.id}",
        "type": "charge.refunded",
        "data": {
            "object": {
                "payment_intent": f"pi_{order.id}",
                "amount_refunded": order.total_ore // share,
            }
        },
    }
    await fulfilment.handle_event(refund)
    await ledger.reverse(
        original_key=f"refund-then-void:{order.id}:debit",
        key=f"refund-then-void:{order.id}:void",
        cause=ledger.Cause(type="time_entry"),
        today=today,
    )
    assert await ledger.balance(company_id, today) == left
    lot = await Lot.objects().get(Lot.order == order.id)
    written_off = sum(
        -e.minutes for e in await ledger.entries_of_lot(lot.id) if e.kind == "refund_write_off"
    )
    assert written_off == 240 // share
    assert sum(e.minutes for e in await ledger.entries_of_lot(lot.id)) == lot.remaining_minutes


async def test_half_refund_writes_off_half_the_lot_at_most():
    company_id, _ = await make_company()
    order = await placed(company_id, kind="topup", hours="4", products=["inventor"])
    await fulfilment.handle_event(await paid_event(order, f"evt_h{order.id}"))
    refund = {
        "id": f"evt_half{order.id}",
        "type": "charge.refunded",
        "data": {
            "object": {"payment_intent": f"pi_{order.id}", "amount_refunded": order.total_ore // 2}
        },
    }
    await fulfilment.handle_event(refund)
    assert await ledger.balance(company_id, clock.today()) == 120


async def test_refund_of_a_plan_ends_it():
    company_id, _ = await make_company()
    order = await placed(company_id, kind="plan", products=["inventor"])
    await fulfilment.handle_event(await paid_event(order, f"evt_pl{order.id}"))
    today = clock.today()
    assert await agreements.active_plans(company_id, today)
    await fulfilment.handle_event(
        {
            "id": f"evt_plr{order.id}",
            "type": "charge.refunded",
            "data": {"object": {"payment_intent": f"pi_{order.id}", "amount_refunded": 100}},
        }
    )
    assert not await agreements.active_plans(company_id, today)


async def test_unknown_events_are_ignored():
    assert (
        await fulfilment.handle_event(
            {"id": "evt_x", "type": "invoice.paid", "data": {"object": {}}}
        )
        == "ignored"
    )


@pytest.mark.parametrize(
    ("paid_at", "expires_on"),
    [
        # 00:30 in Oslo on the night summer time starts (UTC+1 → UTC+2 at 02:00).
        ("2026-03-28T23:30:00+00:00", datetime.date(2027, 3, 29)),
        # 00:30 in Oslo, still summer time, on the day it ends.
        ("2026-10-24T22:30:00+00:00", datetime.date(2027, 10, 25)),
        # 23:30 UTC after winter time began is 00:30 the next day in Oslo.
        ("2026-10-25T23:30:00+00:00", datetime.date(2027, 10, 26)),
        ("2028-02-29T12:00:00+00:00", datetime.date(2029, 2, 28)),  # leap day
    ],
)
def test_topup_expires_one_year_after_the_oslo_day_of_payment(paid_at, expires_on):
    assert pricing.topup_expires_on(datetime.datetime.fromisoformat(paid_at)) == expires_on
