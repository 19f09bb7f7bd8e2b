"""An order is paid only by its own Checkout Session, for its own amount (issue 8), on SQLite and
PostgreSQL. Each test is an attack or an accident that worked before: a session of someone
else's making, an outsider's expiry, refunds with no payment intent, two tabs paying the same
hourly charge, a void after the charges order, an abandoned checkout, malformed signed bodies.

Sessions are real ones in the payments sandbox, driven through the official SDK with the
portal's own configured key; webhooks are signed requests."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import stripe

from backend.services import catalog, charges, clock, coverage
from backend.services.users import create_staff
from backend.tables import (
    CheckoutSession,
    HourlyCharge,
    Lot,
    Order,
    Role,
    StripeEvent,
    User,
)
from tests.conftest import HELD_PORTAL_URL, HELD_SECRET_KEY, HELD_WEBHOOK_SECRET
from tests.support import PASSWORD, login, make_company, make_ticket, new_email, post_form
from tests.test_checkout import (
    checkout,
    complete,
    csrf,
    eventually,
    status_is,
)
from tests.test_webhooks import sign


@pytest.fixture
def stripe_sandbox(live_server: str, settings) -> stripe.StripeClient:
    """The live server's sandbox, with the key the portal itself is configured with."""
    return stripe.StripeClient(
        settings.stripe_secret_key,
        base_addresses={"api": f"{live_server}/sandbox/stripe"},
        http_client=stripe.HTTPXClient(),
    )


async def company_of(client: httpx.AsyncClient) -> int:
    return (await client.get("/api/v1/account")).json()["company"]["id"]


async def events_for(sandbox: stripe.StripeClient, object_id: str, kind: str) -> list[stripe.Event]:
    events = await sandbox.v1.events.list_async(params={"type": kind, "limit": 100})
    return [e for e in events.data if e.data.object.id == object_id]


async def handled(sandbox: stripe.StripeClient, object_id: str, kind: str) -> None:
    """Wait until the portal has recorded the sandbox's `kind` event about `object_id`."""

    async def recorded() -> bool:
        found = await events_for(sandbox, object_id, kind)
        return bool(found) and await StripeEvent.exists().where(StripeEvent.event_id == found[0].id)

    await eventually(recorded)


async def foreign_session(
    sandbox: stripe.StripeClient,
    live_server: str,
    *,
    order_id: int,
    company_id: int,
    amount_ore: int,
    currency: str = "nok",
) -> str:
    """A Checkout Session the portal did not create, pointed at someone's order."""
    session = await sandbox.v1.checkout.sessions.create_async(
        params={
            "mode": "payment",
            "client_reference_id": str(company_id),
            "metadata": {"order_id": str(order_id)},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": amount_ore,
                        "product_data": {"name": "Tidskonto"},
                    },
                }
            ],
            "success_url": f"{live_server}/portal",
            "cancel_url": f"{live_server}/portal",
        }
    )
    return session.id


async def hourly_charge(company_id: int, minutes: int = 20, key: str = "") -> HourlyCharge:
    """Support time without an agreement: an outstanding hourly charge."""
    superuser = await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )
    ticket = await make_ticket(company_id)
    entry = await coverage.record_time_entry(
        ticket=ticket,
        technician=superuser,
        actual=minutes,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"{key or 'charge'}-{ticket.id}",
    )
    return await HourlyCharge.objects().get(HourlyCharge.time_entry == entry.id)


async def charge_statuses(company_id: int) -> list[str]:
    charges = await (
        HourlyCharge.objects().where(HourlyCharge.company == company_id).order_by(HourlyCharge.id)
    )
    return [c.status for c in charges]


async def refunded_on(sandbox: stripe.StripeClient, payment_intent: str) -> int:
    intent = await sandbox.v1.payment_intents.retrieve_async(payment_intent)
    charge = await sandbox.v1.charges.retrieve_async(intent.latest_charge)
    return charge.amount_refunded


# --- a session of someone else's making ----------------------------------------------------


@pytest.mark.parametrize(
    "forgery",
    ["right amount", "wrong amount", "wrong currency", "wrong company"],
)
async def test_a_session_of_someone_elses_making_credits_nothing(
    person, stripe_sandbox, live_server, forgery
):
    victim, _ = await checkout(person, kind="topup", hours="5", products=["inventor"])
    other_company, _ = await make_company("Angriper AS")
    session_id = await foreign_session(
        stripe_sandbox,
        live_server,
        order_id=victim.id,
        company_id=other_company if forgery == "wrong company" else victim.company,
        amount_ore=300 if forgery == "wrong amount" else victim.total_ore,
        currency="eur" if forgery == "wrong currency" else "nok",
    )
    await complete(stripe_sandbox, session_id, "paid")
    await handled(stripe_sandbox, session_id, "checkout.session.completed")

    # The success page with the forged session id does not fulfil either.
    page = await person.get(f"/portal/orders/{victim.id}?session_id={session_id}")
    assert "Venter på betaling" in page.text
    after = await Order.objects().get(Order.id == victim.id)
    assert after.status == "pending"
    assert not await Lot.exists().where(Lot.company == victim.company)
    assert session_id in after.review_reason and "Ingenting er kreditert" in after.review_reason


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount_total", 300), ("currency", "eur"), ("client_reference_id", "999999")],
)
async def test_an_own_session_id_with_other_terms_credits_nothing(client, settings, field, value):
    """Defence in depth: even a signed event for the order's own session must ask for exactly
    the order's money, in NOK, from the order's company."""
    from tests.test_webhooks import completed, pending_topup, post

    placed = await pending_topup()
    event = json.loads(completed(placed, f"evt_terms_{placed.id}"))
    event["data"]["object"][field] = value
    payload = json.dumps(event).encode()
    response = await post(client, payload, sign(payload, settings.stripe_webhook_secret))
    assert response.status_code == 200
    after = await Order.objects().get(Order.id == placed.id)
    assert after.status == "pending" and not await Lot.exists().where(Lot.order == placed.id)
    assert f"evt_terms_{placed.id}" in after.review_reason


async def test_an_outsiders_expiry_leaves_the_real_payment_working(
    person, stripe_sandbox, live_server
):
    placed, session_id = await checkout(person, kind="topup", hours="2", products=["inventor"])
    outsider = await foreign_session(
        stripe_sandbox,
        live_server,
        order_id=placed.id,
        company_id=placed.company,
        amount_ore=placed.total_ore,
    )
    await stripe_sandbox.v1.checkout.sessions.expire_async(outsider)
    await handled(stripe_sandbox, outsider, "checkout.session.expired")
    assert await status_is(placed.id, "pending")

    await complete(stripe_sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    assert (await Lot.objects().get(Lot.order == placed.id)).minutes == 120


# --- refunds found by a key that is there -----------------------------------------------------


def refund_event(event_id: str, **charge: Any) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "charge.refunded",
            "created": int(time.time()),
            "data": {"object": {"object": "charge", **charge}},
        }
    ).encode()


@pytest.mark.parametrize("payment_intent", [None, "pi_nobody_knows"])
async def test_a_refund_of_an_unknown_payment_changes_nothing(client, settings, payment_intent):
    from tests.test_webhooks import pending_topup, post

    waiting = await pending_topup()  # no payment intent yet: NULL in the database
    payload = refund_event(
        f"evt_unknown_refund_{waiting.id}",
        id=f"ch_unknown_{waiting.id}",
        payment_intent=payment_intent,
        amount_refunded=waiting.total_ore,
    )
    response = await post(client, payload, sign(payload, settings.stripe_webhook_secret))
    assert response.status_code == 200
    after = await Order.objects().get(Order.id == waiting.id)
    assert (after.status, after.refunded_ore) == ("pending", 0)


async def test_a_refund_without_payment_intent_is_found_by_its_charge(
    person, stripe_sandbox, live_server, settings
):
    placed, session_id = await checkout(person, kind="topup", hours="2", products=["inventor"])
    await complete(stripe_sandbox, session_id, "paid")

    async def charge_recorded() -> bool:
        return bool((await Order.objects().get(Order.id == placed.id)).stripe_charge_id)

    await eventually(charge_recorded)
    paid = await Order.objects().get(Order.id == placed.id)
    intent = await stripe_sandbox.v1.payment_intents.retrieve_async(paid.stripe_payment_intent_id)
    assert paid.stripe_charge_id == intent.latest_charge

    payload = refund_event(
        f"evt_by_charge_{placed.id}",
        id=paid.stripe_charge_id,
        payment_intent=None,
        amount_refunded=paid.total_ore,
    )
    async with httpx.AsyncClient(base_url=live_server) as stripe_itself:
        response = await stripe_itself.post(
            "/stripe/webhook",
            content=payload,
            headers={"stripe-signature": sign(payload, settings.stripe_webhook_secret)},
        )
    assert response.status_code == 200
    assert await status_is(placed.id, "refunded")
    assert (await Lot.objects().get(Lot.order == placed.id)).remaining_minutes == 0


# --- hourly charges are paid once -------------------------------------------------------------


async def test_two_tabs_pay_the_same_charge_once(person, stripe_sandbox):
    company_id = await company_of(person)
    await hourly_charge(company_id)
    first, first_session = await checkout(person, kind="charges")
    second, second_session = await checkout(person, kind="charges")
    assert second.id == first.id and second_session != first_session

    # The first tab's session was expired when the second tab's was made: it cannot pay.
    old = await stripe_sandbox.v1.checkout.sessions.retrieve_async(first_session)
    assert old.status == "expired"
    with pytest.raises(stripe.StripeError):
        await complete(stripe_sandbox, first_session, "paid")

    await complete(stripe_sandbox, second_session, "paid")
    await eventually(lambda: status_is(first.id, "paid"))
    assert await charge_statuses(company_id) == ["paid"]
    assert await Order.count().where(Order.company == company_id) == 1


async def test_a_new_charge_replaces_the_open_charges_order(person, stripe_sandbox):
    company_id = await company_of(person)
    one = await hourly_charge(company_id, 20, "one")
    first, first_session = await checkout(person, kind="charges")
    two = await hourly_charge(company_id, 50, "two")
    second, _ = await checkout(person, kind="charges")
    assert second.id != first.id
    assert second.amount_ore == one.amount_ore + two.amount_ore  # exactly the rows it holds
    assert await status_is(first.id, "cancelled")
    old = await stripe_sandbox.v1.checkout.sessions.retrieve_async(first_session)
    assert old.status == "expired"
    linked = await HourlyCharge.objects().where(HourlyCharge.company == company_id)
    assert {c.order for c in linked} == {second.id}


# --- voiding after the charges order ----------------------------------------------------------


@asynccontextmanager
async def staff_session(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    email = new_email("tekniker")
    await create_staff(email=email, name="Tekniker", role="technician", password=PASSWORD)
    async with httpx.AsyncClient(base_url=live_server, timeout=20) as client:
        token = await csrf(client, "/login")
        response = await client.post(
            "/login", data={"email": email, "password": PASSWORD, "_csrf_token": token}
        )
        assert response.status_code == 303
        yield client


async def void(staff: httpx.AsyncClient, entry_id: int) -> None:
    token = await csrf(staff, "/staff")
    response = await staff.post(
        f"/staff/time-entries/{entry_id}/void",
        data={"reason": "Ført på feil firma", "_csrf_token": token},
    )
    assert response.status_code == 303, response.text


async def test_void_of_an_unpaid_charge_in_a_charges_order_unlinks_it_and_expires_the_session(
    person, stripe_sandbox, live_server
):
    company_id = await company_of(person)
    charge = await hourly_charge(company_id)
    placed, session_id = await checkout(person, kind="charges")
    async with staff_session(live_server) as staff:
        await void(staff, charge.time_entry)

    voided = await HourlyCharge.objects().get(HourlyCharge.id == charge.id)
    assert (voided.status, voided.order) == ("cancelled", None)
    assert await status_is(placed.id, "cancelled")
    session = await stripe_sandbox.v1.checkout.sessions.retrieve_async(session_id)
    assert session.status == "expired"
    with pytest.raises(stripe.StripeError):
        await complete(stripe_sandbox, session_id, "paid")
    page = await person.get(f"/portal/orders/{placed.id}")
    assert "Avbrutt" in page.text and "Bestill på nytt" in page.text


async def test_void_of_a_paid_charge_refunds_it_and_the_order_shows_it(
    person, stripe_sandbox, live_server
):
    company_id = await company_of(person)
    kept = await hourly_charge(company_id, 20, "kept")
    wrong = await hourly_charge(company_id, 50, "wrong")
    placed, session_id = await checkout(person, kind="charges")
    await complete(stripe_sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    paid = await Order.objects().get(Order.id == placed.id)

    async with staff_session(live_server) as staff:
        await void(staff, wrong.time_entry)
        await void(staff, wrong.time_entry)  # a double click refunds once

    with_mva = wrong.amount_ore + (wrong.amount_ore * 25 + 50) // 100
    assert await refunded_on(stripe_sandbox, paid.stripe_payment_intent_id) == with_mva
    assert (await Order.objects().get(Order.id == placed.id)).refunded_ore == with_mva
    assert await charge_statuses(company_id) == ["paid", "refunded"]
    assert (await HourlyCharge.objects().get(HourlyCharge.id == kept.id)).status == "paid"
    page = await person.get(f"/portal/orders/{placed.id}")
    assert "Refundert" in page.text
    charges_page = await person.get("/portal/charges")
    assert "Refundert" in charges_page.text


async def test_void_while_the_payment_is_under_way_refunds_the_charge_when_it_succeeds(
    person, stripe_sandbox, live_server
):
    company_id = await company_of(person)
    await hourly_charge(company_id, 20, "kept")
    wrong = await hourly_charge(company_id, 35, "wrong")
    placed, session_id = await checkout(person, kind="charges")
    await complete(stripe_sandbox, session_id, "async_pending")
    await eventually(lambda: status_is(placed.id, "processing"))
    async with staff_session(live_server) as staff:
        await void(staff, wrong.time_entry)
    assert await charge_statuses(company_id) == ["outstanding", "cancelled"]

    await complete(stripe_sandbox, session_id, "async_succeeded")
    await eventually(lambda: status_is(placed.id, "paid"))
    paid = await Order.objects().get(Order.id == placed.id)
    with_mva = wrong.amount_ore + (wrong.amount_ore * 25 + 50) // 100

    async def refunded() -> bool:
        return (await Order.objects().get(Order.id == placed.id)).refunded_ore == with_mva

    await eventually(refunded)
    assert await refunded_on(stripe_sandbox, paid.stripe_payment_intent_id) == with_mva
    assert await charge_statuses(company_id) == ["paid", "refunded"]


async def test_a_refund_of_a_charges_order_marks_its_charges_refunded(person, stripe_sandbox):
    company_id = await company_of(person)
    await hourly_charge(company_id, 20, "a")
    await hourly_charge(company_id, 35, "b")
    placed, session_id = await checkout(person, kind="charges")
    await complete(stripe_sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    paid = await Order.objects().get(Order.id == placed.id)
    await stripe_sandbox.v1.refunds.create_async(
        params={"payment_intent": paid.stripe_payment_intent_id}
    )
    await eventually(lambda: status_is(placed.id, "refunded"))
    assert await charge_statuses(company_id) == ["refunded", "refunded"]
    # Nothing reopened silently: a refunded charge is not owed again.
    assert await charges.outstanding_ore(company_id) == 0


# --- an abandoned checkout can be finished or cancelled -------------------------------------


async def post_on_order(client: httpx.AsyncClient, order_id: int, action: str) -> httpx.Response:
    token = await csrf(client, f"/portal/orders/{order_id}")
    return await client.post(f"/portal/orders/{order_id}/{action}", data={"_csrf_token": token})


async def test_betal_makes_a_new_session_for_the_same_order_and_amount(person, stripe_sandbox):
    placed, first_session = await checkout(person, kind="topup", hours="3", products=["inventor"])
    await complete(stripe_sandbox, first_session, "declined")
    page = await person.get(f"/portal/orders/{placed.id}")
    assert "Betal" in page.text and "Avbryt bestillingen" in page.text

    token = await csrf(person, f"/portal/orders/{placed.id}")
    clicks = await asyncio.gather(
        *(
            person.post(f"/portal/orders/{placed.id}/pay", data={"_csrf_token": token})
            for _ in range(2)
        )
    )
    assert [r.status_code for r in clicks] == [303, 303]
    locations = {r.headers["location"] for r in clicks}
    assert len(locations) == 1  # a double click: one new session
    new_session = locations.pop().rsplit("/", 1)[1]
    assert new_session != first_session
    old = await stripe_sandbox.v1.checkout.sessions.retrieve_async(first_session)
    assert old.status == "expired"
    fresh = await stripe_sandbox.v1.checkout.sessions.retrieve_async(new_session)
    assert (fresh.status, fresh.amount_total) == ("open", placed.total_ore)
    assert await CheckoutSession.count().where(CheckoutSession.order == placed.id) == 2

    # The replaced session's expiry does not touch the order; the new one pays it.
    await handled(stripe_sandbox, first_session, "checkout.session.expired")
    assert await status_is(placed.id, "pending")
    await complete(stripe_sandbox, new_session, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    assert (await Lot.objects().get(Lot.order == placed.id)).minutes == 180


async def test_avbryt_cancels_the_order_and_its_session(person, stripe_sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="1", products=["inventor"])
    token = await csrf(person, f"/portal/orders/{placed.id}")
    clicks = await asyncio.gather(
        *(
            person.post(f"/portal/orders/{placed.id}/cancel", data={"_csrf_token": token})
            for _ in range(2)
        )
    )
    assert [r.status_code for r in clicks] == [303, 303]
    assert await status_is(placed.id, "cancelled")
    session = await stripe_sandbox.v1.checkout.sessions.retrieve_async(session_id)
    assert session.status == "expired"
    page = await person.get(f"/portal/orders/{placed.id}")
    assert "Avbrutt" in page.text and "Bestill på nytt" in page.text
    assert 'hx-trigger="every 2s"' not in page.text
    again = await post_on_order(person, placed.id, "pay")
    assert again.status_code == 303 and again.headers["location"] == f"/portal/orders/{placed.id}"
    assert await status_is(placed.id, "cancelled")


async def test_an_expired_session_shows_the_order_expired_with_bestill_paa_nytt(
    person, stripe_sandbox
):
    placed, session_id = await checkout(person, kind="topup", hours="1", products=["inventor"])
    await stripe_sandbox.v1.checkout.sessions.expire_async(session_id)
    await eventually(lambda: status_is(placed.id, "expired"))
    page = await person.get(f"/portal/orders/{placed.id}")
    assert "Utløpt" in page.text and "Bestill på nytt" in page.text
    assert 'href="/portal/topup"' in page.text and "/pay" not in page.text


async def test_only_the_superuser_pays_or_cancels_and_only_their_own(person, live_server):
    placed, _ = await checkout(person, kind="topup", hours="1", products=["inventor"])
    member_email = new_email("medlem")
    await User(
        email=member_email,
        name="Mona Medlem",
        role=Role.member.value,
        company=placed.company,
        password_hash=(await User.objects().get(User.company == placed.company)).password_hash,
    ).save()
    _, other_email = await make_company("Annet Firma AS")
    for email, expected in ((member_email, 403), (other_email, 404)):
        async with httpx.AsyncClient(base_url=live_server) as someone:
            token = await csrf(someone, "/login")
            await someone.post(
                "/login", data={"email": email, "password": PASSWORD, "_csrf_token": token}
            )
            token = await csrf(someone, "/portal")
            for action in ("pay", "cancel"):
                response = await someone.post(
                    f"/portal/orders/{placed.id}/{action}", data={"_csrf_token": token}
                )
                assert response.status_code == expected
            if expected == 403:
                page = await someone.get(f"/portal/orders/{placed.id}")
                assert "Avbryt bestillingen" not in page.text
    no_token = await person.post(f"/portal/orders/{placed.id}/cancel", data={})
    assert no_token.status_code == 403
    assert await status_is(placed.id, "pending")


# --- without the webhook: "Sjekk status", and a second payment refunded -------------------------


@pytest.fixture
async def held(silent_sandbox: str, tmp_path) -> AsyncIterator[tuple[Any, stripe.StripeClient]]:
    """The portal in process, against a sandbox whose webhooks go nowhere: the test delivers
    them (signed) when it chooses."""
    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from backend.config import load_settings

    await catalog.seed_demo_catalog()
    settings = load_settings(
        {
            **os.environ,
            "PORTAL_VAR_DIR": str(tmp_path),
            "STRIPE_SECRET_KEY": HELD_SECRET_KEY,
            "STRIPE_WEBHOOK_SECRET": HELD_WEBHOOK_SECRET,
            "STRIPE_API_BASE": silent_sandbox,
            "PORTAL_BASE_URL": HELD_PORTAL_URL,
        }
    )
    sandbox = stripe.StripeClient(
        HELD_SECRET_KEY, base_addresses={"api": silent_sandbox}, http_client=stripe.HTTPXClient()
    )
    async with AsyncTestClient(
        app=create_app(settings, db_pool=False, background_jobs=False)
    ) as client:
        yield client, sandbox


async def deliver(client: Any, sandbox: stripe.StripeClient, object_id: str, kind: str) -> Any:
    (event,) = await events_for(sandbox, object_id, kind)
    payload = json.dumps(event.to_dict()).encode()
    return await client.post(
        "/stripe/webhook",
        content=payload,
        headers={"stripe-signature": sign(payload, HELD_WEBHOOK_SECRET)},
    )


async def place(client: Any, **fields: str) -> tuple[int, str]:
    response = await post_form(client, "/portal/orders", fields)
    assert response.status_code == 303, response.text
    session_id = response.headers["location"].rsplit("/", 1)[1]
    return (await Order.objects().get(Order.stripe_session_id == session_id)).id, session_id


async def test_sjekk_status_finds_a_payment_the_webhook_has_not_told(held):
    client, sandbox = held
    _, email = await make_company()
    await login(client, email)
    order_id, session_id = await place(client, kind="topup", hours="2", products="inventor")
    page = await client.get(f"/portal/orders/{order_id}")
    assert "Sjekk status" in page.text and "oppdateres av seg selv" not in page.text
    check = f"/portal/orders/{order_id}?session_id={session_id}"
    assert f'href="{check}"' in page.text

    await complete(sandbox, session_id, "paid")
    checked = await client.get(check)
    assert "Betalt" in checked.text
    assert (await Lot.objects().get(Lot.order == order_id)).minutes == 120


async def test_sjekk_status_shows_an_expired_session_as_expired(held):
    client, sandbox = held
    _, email = await make_company()
    await login(client, email)
    order_id, session_id = await place(client, kind="topup", hours="1", products="inventor")
    await sandbox.v1.checkout.sessions.expire_async(session_id)  # its webhook goes nowhere
    checked = await client.get(f"/portal/orders/{order_id}?session_id={session_id}")
    assert "Utløpt" in checked.text and "Bestill på nytt" in checked.text
    assert await status_is(order_id, "expired")


async def test_betal_on_a_payment_under_way_keeps_its_session_current(held):
    """The customer chose a delayed payment method, its webhook is late, and they click
    "Betal": no second session; the payment's later failure still reaches the order."""
    client, sandbox = held
    _, email = await make_company()
    await login(client, email)
    order_id, session_id = await place(client, kind="topup", hours="1", products="inventor")
    await complete(sandbox, session_id, "async_pending")
    response = await post_form(client, f"/portal/orders/{order_id}/pay", {})
    assert response.headers["location"] == f"/portal/orders/{order_id}"
    assert await status_is(order_id, "processing")
    assert await CheckoutSession.count().where(CheckoutSession.order == order_id) == 1

    await complete(sandbox, session_id, "async_failed")
    await deliver(client, sandbox, session_id, "checkout.session.async_payment_failed")
    assert await status_is(order_id, "failed")


async def test_a_tab_that_paid_first_is_fulfilled_not_charged_again(held):
    client, sandbox = held
    company_id, email = await make_company()
    await login(client, email)
    await hourly_charge(company_id)
    order_id, first_session = await place(client, kind="charges")
    await complete(sandbox, first_session, "paid")  # its webhook is still on its way

    response = await post_form(client, "/portal/orders", {"kind": "charges"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/portal/orders/{order_id}"
    assert await status_is(order_id, "paid")
    assert await charge_statuses(company_id) == ["paid"]
    assert await CheckoutSession.count().where(CheckoutSession.order == order_id) == 1


async def test_a_second_payment_of_the_same_charge_is_refunded(held):
    """Tab one paid, but its webhook is late; a new charge came in; tab two paid the new order
    (both charges). Tab one's payment, when its event arrives, is refunded in full."""
    client, sandbox = held
    company_id, email = await make_company()
    await login(client, email)
    await hourly_charge(company_id, 20, "first")
    first_id, first_session = await place(client, kind="charges")
    await complete(sandbox, first_session, "paid")
    await hourly_charge(company_id, 50, "second")
    second_id, second_session = await place(client, kind="charges")
    assert second_id != first_id
    await complete(sandbox, second_session, "paid")
    assert (await deliver(client, sandbox, second_session, "checkout.session.completed")).json()[
        "result"
    ] == "handled"
    assert await charge_statuses(company_id) == ["paid", "paid"]

    late = await deliver(client, sandbox, first_session, "checkout.session.completed")
    assert late.status_code == 200
    first_payment = (
        await sandbox.v1.checkout.sessions.retrieve_async(first_session)
    ).payment_intent
    first = await Order.objects().get(Order.id == first_id)
    assert first.status == "cancelled" and "refunderes automatisk" in first.review_reason
    assert await refunded_on(sandbox, first_payment) == first.total_ore
    second = await Order.objects().get(Order.id == second_id)
    assert (second.status, second.refunded_ore) == ("paid", 0)
    linked = await HourlyCharge.objects().where(HourlyCharge.company == company_id)
    assert {c.order for c in linked} == {second_id}


# --- malformed signed bodies: 4xx, and nothing moves ----------------------------------------


def session_event(event_id: str, **session: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": "cs_test_someone",
                "object": "checkout.session",
                "status": "complete",
                "payment_status": "paid",
                **session,
            }
        },
    }


@pytest.mark.parametrize(
    "body",
    [
        [],
        "evt",
        {"id": "evt_no_type", "data": {"object": {"id": "cs_1"}}},
        {"id": "evt_no_data", "type": "checkout.session.completed"},
        {"id": "evt_no_object", "type": "checkout.session.completed", "data": {}},
        {"type": "checkout.session.completed", "data": {"object": {"id": "cs_1"}}},
        session_event("evt_huge_order", metadata={"order_id": "9" * 30}),
        session_event("evt_minus_order", metadata={"order_id": "-1"}),
        session_event("evt_string_amount", amount_total="300"),
        session_event("evt_no_session_id", id=None),
        {
            "id": "evt_string_refund",
            "type": "charge.refunded",
            "data": {"object": {"payment_intent": "pi_1", "amount_refunded": "all"}},
        },
    ],
    ids=[
        "list",
        "string",
        "no type",
        "no data",
        "no object",
        "no id",
        "huge order_id",
        "negative order_id",
        "string amount",
        "no session id",
        "string refund",
    ],
)
async def test_malformed_signed_bodies_get_400_and_nothing_moves(client, settings, body):
    from tests.test_webhooks import pending_topup, post

    waiting = await pending_topup()
    before = await StripeEvent.count()
    payload = json.dumps(body).encode()
    response = await post(client, payload, sign(payload, settings.stripe_webhook_secret))
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed event")
    assert await StripeEvent.count() == before
    assert await status_is(waiting.id, "pending")


@pytest.mark.parametrize("payload", [b"not json", b"[" * 100_000], ids=["text", "deep"])
async def test_signed_bodies_that_are_not_json_get_400(client, settings, payload):
    from tests.test_webhooks import post

    response = await post(client, payload, sign(payload, settings.stripe_webhook_secret))
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed event")


# --- admins see the orders that need review -------------------------------------------------


async def test_admins_see_orders_that_need_review_on_the_company_page(client, settings):
    from tests.test_staff import sign_in_staff
    from tests.test_webhooks import completed, pending_topup, post

    placed = await pending_topup()
    event = json.loads(completed(placed, f"evt_review_{placed.id}"))
    event["data"]["object"]["amount_total"] = 300
    payload = json.dumps(event).encode()
    await post(client, payload, sign(payload, settings.stripe_webhook_secret))

    await sign_in_staff(client, "admin")
    page = await client.get(f"/staff/companies/{placed.company}")
    assert "Bestillinger som må sjekkes" in page.text
    assert f"evt_review_{placed.id}" in page.text and "beløp 300 øre" in page.text
