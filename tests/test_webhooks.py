"""POST /stripe/webhook: the real signature check, then exactly-once handling (SPEC §4)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import pytest

from backend.services import catalog, orders
from backend.tables import Lot, Order, Role, StripeEvent, User
from tests.support import make_company


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


async def pending_topup(hours: str = "5") -> Order:
    await catalog.seed_demo_catalog()
    company_id, _ = await make_company()
    user = await User.objects().get((User.company == company_id) & (User.role == Role.superuser))
    order = await orders.place_order(
        user, {"kind": "topup", "hours": hours, "products": ["inventor"]}
    )
    # The session the portal created for it (start_checkout records it).
    assert await orders.record_session(order.id, f"cs_test_{order.id}")
    return await Order.objects().get(Order.id == order.id)


def completed(order: Order, event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "checkout.session.completed",
            "api_version": "2025-01-01",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": f"cs_test_{order.id}",
                    "object": "checkout.session",
                    "status": "complete",
                    "payment_status": "paid",
                    "payment_intent": f"pi_{order.id}",
                    "amount_total": order.total_ore,
                    "currency": "nok",
                    "client_reference_id": str(order.company),
                    "metadata": {"order_id": str(order.id)},
                }
            },
        }
    ).encode()


async def post(client, payload: bytes, signature: str):
    return await client.post(
        "/stripe/webhook",
        content=payload,
        headers={"stripe-signature": signature, "content-type": "application/json"},
    )


async def test_a_signed_event_is_handled(client, settings):
    order = await pending_topup()
    payload = completed(order, f"evt_ok_{order.id}")
    response = await post(client, payload, sign(payload, settings.stripe_webhook_secret))
    assert response.status_code == 200
    assert response.json()["result"] == "handled"
    assert (await Lot.objects().get(Lot.order == order.id)).minutes == 300


@pytest.mark.parametrize("attack", ["wrong secret", "altered body", "301 s old", "no header"])
async def test_bad_signatures_are_refused_and_nothing_moves(client, settings, attack):
    order = await pending_topup()
    payload = completed(order, f"evt_bad_{order.id}")
    secret = settings.stripe_webhook_secret
    if attack == "wrong secret":
        signature = sign(payload, "whsec_someone_else")
    elif attack == "altered body":
        signature = sign(payload, secret)
        payload = payload.replace(b'"paid"', b'"paid" ')
    elif attack == "301 s old":
        signature = sign(payload, secret, int(time.time()) - 301)
    else:
        signature = ""
    response = await post(client, payload, signature)
    assert response.status_code == 400
    assert not await Lot.exists().where(Lot.order == order.id)
    assert not await StripeEvent.exists().where(StripeEvent.event_id == f"evt_bad_{order.id}")
    assert (await Order.objects().get(Order.id == order.id)).status == "pending"


async def test_the_same_event_three_times_at_once_credits_once(client, settings):
    order = await pending_topup("3")
    payload = completed(order, f"evt_3x_{order.id}")
    signature = sign(payload, settings.stripe_webhook_secret)
    responses = await asyncio.gather(*(post(client, payload, signature) for _ in range(3)))
    assert all(r.status_code == 200 for r in responses)
    assert sorted(r.json()["result"] for r in responses) == ["duplicate", "duplicate", "handled"]
    lots = await Lot.objects().where(Lot.order == order.id)
    assert [lot.remaining_minutes for lot in lots] == [180]


async def test_unknown_event_types_are_accepted_and_ignored(client, settings):
    payload = json.dumps(
        {
            "id": "evt_other",
            "object": "event",
            "type": "customer.created",
            "data": {"object": {"id": "cus_1"}},
        }
    ).encode()
    response = await post(client, payload, sign(payload, settings.stripe_webhook_secret))
    assert response.status_code == 200
    assert response.json()["result"] == "ignored"
