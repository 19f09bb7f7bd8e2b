"""The money path end to end, as under `make run`: the portal served by uvicorn with its
payments sandbox, a customer's requests over HTTP, and the sandbox driven through the official
Stripe SDK. Webhooks are real signed requests from the sandbox to the portal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
import stripe

from backend.services import catalog, clock, ledger
from backend.tables import Agreement, Lot, Order, Role, StripeEvent, User
from tests.support import PASSWORD, make_company, make_ticket


@pytest.fixture
def sandbox(live_server: str, sandbox_key: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        sandbox_key,
        base_addresses={"api": f"{live_server}/sandbox/stripe"},
        http_client=stripe.HTTPXClient(),
    )


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    html = (await client.get(path)).text
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


async def order(client: httpx.AsyncClient, **fields: str | list[str]) -> httpx.Response:
    token = await csrf(client, "/portal/topup")
    return await client.post("/portal/orders", data={**fields, "_csrf_token": token})


async def checkout(client: httpx.AsyncClient, **fields) -> tuple[Order, str]:
    response = await order(client, **fields)
    assert response.status_code == 303, response.text
    url = response.headers["location"]
    session_id = url.rsplit("/", 1)[1]
    placed = await Order.objects().get(Order.stripe_session_id == session_id)
    return placed, session_id


async def complete(sandbox: stripe.StripeClient, session_id: str, outcome: str) -> None:
    await sandbox.raw_request_async(
        "post", f"/v1/test_helpers/checkout/sessions/{session_id}/complete", outcome=outcome
    )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    """Webhooks arrive on their own time: wait (bounded) until `check` holds."""
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the expected state was not reached in time")


async def settled_events(sandbox: stripe.StripeClient, *object_ids: str) -> list[str]:
    """The types of the sandbox's events about these objects (a session, a payment intent),
    once the portal has answered every delivery of them: Stripe's `pending_webhooks` is 0.

    The sandbox records an event in the API call that causes it, so once the call has returned
    this is the moment after which no webhook about them can still arrive. (The newest 100
    events: a test's own are the newest.)"""
    ids = set(object_ids)
    types: list[str] = []

    async def answered() -> bool:
        listing = await sandbox.v1.events.list_async(params={"limit": 100})
        about = [
            event
            for event in listing.data
            if ids & {event.data.object.id, event.data.object.to_dict().get("payment_intent")}
        ]
        types[:] = [event.type for event in reversed(about)]
        return all(event.pending_webhooks == 0 for event in about)

    await eventually(answered)
    return types


async def status_is(order_id: int, status: str) -> bool:
    return (await Order.objects().get(Order.id == order_id)).status == status


async def test_topup_paid_credits_one_lot_through_the_webhook(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="5", products=["inventor"])
    session = await sandbox.v1.checkout.sessions.retrieve_async(session_id)
    assert session.amount_total == placed.total_ore
    assert session.currency == "nok" and session.mode == "payment"
    assert session.client_reference_id == str(placed.company)
    assert session.metadata["order_id"] == str(placed.id)

    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))

    lots = await Lot.objects().where(Lot.order == placed.id)
    assert [(lot.minutes, lot.remaining_minutes) for lot in lots] == [(300, 300)]
    page = await person.get(f"/portal/orders/{placed.id}")
    assert "Betalt" in page.text and "5 t 0 min lagt til på tidskontoen" in page.text
    account = (await person.get("/api/v1/account")).json()
    assert account["remaining_minutes"] == 300
    assert account["lots"][0]["expires_on"] == lots[0].expires_on.isoformat()
    assert account["orders"][0] == {
        "id": placed.id,
        "kind": "topup",
        "status": "paid",
        "amount_ore": placed.amount_ore,
        "total_ore": placed.total_ore,
    }


async def test_one_stripe_customer_per_company(person, sandbox):
    first, _ = await checkout(person, kind="topup", hours="1", products=["inventor"])
    second, _ = await checkout(person, kind="topup", hours="2", products=["inventor"])
    sessions = [
        await sandbox.v1.checkout.sessions.retrieve_async(o.stripe_session_id)
        for o in (first, second)
    ]
    assert sessions[0].customer and sessions[0].customer == sessions[1].customer


async def test_success_page_and_repeated_webhooks_give_one_plan(person, sandbox):
    placed, session_id = await checkout(person, kind="plan", products=["inventor", "vault"])
    await complete(sandbox, session_id, "paid")
    # Whichever comes first, the success page or the webhook, fulfils; the other does nothing.
    page = await person.get(f"/portal/orders/{placed.id}?session_id={session_id}")
    assert "Betalt" in page.text and "Fri support gjelder" in page.text
    events = await sandbox.v1.events.list_async(params={"type": "checkout.session.completed"})
    event = next(e for e in events.data if e.data.object.id == session_id)
    for _ in range(2):
        await sandbox.raw_request_async("post", f"/v1/test_helpers/events/{event.id}/resend")
    await eventually(lambda: StripeEvent.exists().where(StripeEvent.event_id == event.id))

    async def resends_answered() -> bool:
        return (await sandbox.v1.events.retrieve_async(event.id)).pending_webhooks == 0

    await eventually(resends_answered)  # the portal has answered both resends
    assert await Agreement.count().where(Agreement.order == placed.id) == 1


async def test_the_superuser_gets_one_receipt_mail_from_the_served_portal(person, sandbox, smtp):
    """As under `make run` with an SMTP server: the success page and the webhook both report
    the payment, and the portal's own sender (its background task) mails one receipt."""
    placed, session_id = await checkout(person, kind="plan", products=["inventor", "vault"])
    await complete(sandbox, session_id, "paid")
    await person.get(f"/portal/orders/{placed.id}?session_id={session_id}")
    await settled_events(sandbox, session_id)
    superuser = await User.objects().get(User.id == placed.created_by)
    [mail] = await smtp.wait_for(superuser.email)
    assert mail["Subject"] == f"Kvittering for bestilling nr. {placed.id}"
    text = mail.get_body(("plain",)).get_content()
    assert "Fri support 6 mnd: Autodesk Inventor, Autodesk Vault" in text and "Periode: " in text
    await asyncio.sleep(1)
    assert len(smtp.messages_to(superuser.email)) == 1


async def test_declined_card_leaves_the_order_waiting(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="1", products=["inventor"])
    await complete(sandbox, session_id, "declined")
    # As at Stripe, a declined card sends no event: none is on its way to the portal.
    assert await settled_events(sandbox, session_id) == []
    assert (await sandbox.v1.checkout.sessions.retrieve_async(session_id)).status == "open"
    assert await status_is(placed.id, "pending")
    assert not await Lot.exists().where(Lot.order == placed.id)


async def test_delayed_payment_that_succeeds(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="2", products=["inventor"])
    await complete(sandbox, session_id, "async_pending")
    await eventually(lambda: status_is(placed.id, "processing"))
    assert "Betalingen behandles" in (await person.get(f"/portal/orders/{placed.id}")).text
    await complete(sandbox, session_id, "async_succeeded")
    await eventually(lambda: status_is(placed.id, "paid"))
    assert await Lot.count().where(Lot.order == placed.id) == 1


async def test_delayed_payment_that_fails_credits_nothing_and_says_why(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="2", products=["inventor"])
    await complete(sandbox, session_id, "async_pending")
    await complete(sandbox, session_id, "async_failed")
    await eventually(lambda: status_is(placed.id, "failed"))
    page = await person.get(f"/portal/orders/{placed.id}")
    assert "Betalingen feilet" in page.text and "Ingenting er belastet." in page.text
    assert not await Lot.exists().where(Lot.order == placed.id)


async def test_expired_session_expires_the_order(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="1", products=["inventor"])
    await sandbox.v1.checkout.sessions.expire_async(session_id)
    await eventually(lambda: status_is(placed.id, "expired"))


async def test_refund_through_stripe_writes_off_what_is_left(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="2", products=["inventor"])
    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    paid = await Order.objects().get(Order.id == placed.id)
    today = clock.today()
    await ledger.debit(
        company_id=paid.company,
        minutes=45,
        on_date=today,
        key=f"t{paid.id}",
        cause=ledger.Cause(type="time_entry"),
    )
    await sandbox.v1.refunds.create_async(params={"payment_intent": paid.stripe_payment_intent_id})
    await eventually(lambda: status_is(placed.id, "refunded"))
    assert await ledger.balance(paid.company, today) == 0
    lot = await Lot.objects().get(Lot.order == placed.id)
    kinds = [(e.kind, e.minutes) for e in await ledger.entries_of_lot(lot.id)]
    assert kinds == [("credit", 120), ("debit", -45), ("refund_write_off", -75)]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "topup", "hours": "5", "products": ["inventor"], "amount_ore": "100"},
        {"kind": "topup", "hours": "2.5", "products": ["inventor"]},
        {"kind": "topup", "hours": "0", "products": ["inventor"]},
        {"kind": "topup", "hours": "201", "products": ["inventor"]},
        {"kind": "topup", "hours": "5", "products": ["photoshop"]},
        {"kind": "topup", "hours": "5"},
        {"kind": "gift", "hours": "5", "products": ["inventor"]},
    ],
    ids=["amount", "fraction", "zero", "too-many", "unknown-product", "no-product", "kind"],
)
async def test_tampered_orders_get_422_and_no_order(person, fields):
    before = await Order.count()
    response = await order(person, **fields)
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert await Order.count() == before


async def test_members_see_prices_but_cannot_buy(live_server):
    await catalog.seed_demo_catalog()
    company_id, _ = await make_company()
    member = await User.objects().get(User.company == company_id)
    await User.update({User.role: Role.member.value}).where(User.id == member.id)
    async with httpx.AsyncClient(base_url=live_server) as client:
        token = await csrf(client, "/login")
        await client.post(
            "/login", data={"email": member.email, "password": PASSWORD, "_csrf_token": token}
        )
        page = await client.get("/portal/topup")
        assert "Gå til betaling" not in page.text and "kr" in page.text
        response = await order(client, kind="topup", hours="5", products=["inventor"])
        assert response.status_code == 403
    assert not await Order.exists().where(Order.company == company_id)


async def test_receipt_shows_amounts_ex_and_incl_mva(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="10", products=["inventor"])
    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    receipt = (await person.get(f"/portal/orders/{placed.id}/receipt")).text
    assert "Beløp eks. mva" in receipt and "Mva 25 %" in receipt
    assert "11\xa0000,00\xa0kr" in receipt and "13\xa0750,00\xa0kr" in receipt


async def test_success_page_first_then_the_late_webhook_does_nothing(silent_sandbox, tmp_path):
    """Deterministic order of arrival: the sandbox's own webhooks go nowhere, so the success
    page must fulfil; then the test delivers the same event, signed, and nothing moves."""
    import json
    import os

    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from backend.config import load_settings
    from tests.conftest import HELD_PORTAL_URL, HELD_SECRET_KEY, HELD_WEBHOOK_SECRET
    from tests.support import login, post_form
    from tests.test_webhooks import sign

    await catalog.seed_demo_catalog()
    _, email = await make_company()
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
    async with AsyncTestClient(app=create_app(settings, db_pool=False)) as client:
        await login(client, email)
        response = await post_form(
            client, "/portal/orders", {"kind": "topup", "hours": "3", "products": "inventor"}
        )
        assert response.status_code == 303
        session_id = response.headers["location"].rsplit("/", 1)[1]
        placed = await Order.objects().get(Order.stripe_session_id == session_id)
        await complete(sandbox, session_id, "paid")

        page = await client.get(f"/portal/orders/{placed.id}?session_id={session_id}")
        assert "Betalt" in page.text
        assert await Lot.count().where(Lot.order == placed.id) == 1

        events = await sandbox.v1.events.list_async(params={"type": "checkout.session.completed"})
        event = next(e for e in events.data if e.data.object.id == session_id)
        payload = json.dumps(event.to_dict()).encode()
        late = await client.post(
            "/stripe/webhook",
            content=payload,
            headers={"stripe-signature": sign(payload, HELD_WEBHOOK_SECRET)},
        )
        assert late.status_code == 200
        assert await Lot.count().where(Lot.order == placed.id) == 1
        lot = await Lot.objects().get(Lot.order == placed.id)
        assert lot.remaining_minutes == 180


async def test_order_status_region_polls_until_the_order_is_final(person, sandbox):
    placed, session_id = await checkout(person, kind="topup", hours="1", products=["inventor"])
    waiting = await person.get(f"/portal/orders/{placed.id}/status")
    assert waiting.text.lstrip().startswith('<section id="order-status"')
    assert 'hx-trigger="every 2s"' in waiting.text and "Venter på betaling" in waiting.text
    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    final = await person.get(f"/portal/orders/{placed.id}/status")
    assert "Betalt" in final.text and "hx-trigger" not in final.text


async def test_another_companys_order_is_not_found(person, live_server):
    placed, _ = await checkout(person, kind="topup", hours="1", products=["inventor"])
    _, other_email = await make_company("Annet Firma AS")
    async with httpx.AsyncClient(base_url=live_server) as other:
        token = await csrf(other, "/login")
        await other.post(
            "/login", data={"email": other_email, "password": PASSWORD, "_csrf_token": token}
        )
        for path in ("", "/status", "/receipt"):
            response = await other.get(f"/portal/orders/{placed.id}{path}")
            assert response.status_code == 404


async def test_outstanding_hourly_charges_are_paid_once_through_checkout(person, sandbox):
    from backend.services import coverage
    from backend.tables import HourlyCharge

    company_id = (await person.get("/api/v1/account")).json()["company"]["id"]
    superuser = await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )
    ticket = await make_ticket(company_id)
    for n, minutes in enumerate((20, 50)):
        await coverage.record_time_entry(
            ticket=ticket,
            technician=superuser,
            actual=minutes,
            performed_on=clock.today(),
            channel="phone",
            note="",
            key=f"charge-{ticket.id}-{n}",
        )
    charges = await HourlyCharge.objects().where(HourlyCharge.company == company_id)
    owed = sum(c.amount_ore for c in charges)
    dashboard = await person.get("/portal")
    assert "Utestående:" in dashboard.text

    placed, session_id = await checkout(person, kind="charges")
    assert placed.amount_ore == owed
    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    statuses = [
        c.status for c in await HourlyCharge.objects().where(HourlyCharge.company == company_id)
    ]
    assert statuses == ["paid", "paid"]
    page = await person.get("/portal/charges")
    assert "Ingenting utestående." in page.text
    again = await order(person, kind="charges")
    assert again.status_code == 422
    assert "Det er ingen utestående beløp å betale." in again.text


async def test_the_portals_sandbox_answers_only_the_portals_key(
    person, sandbox, sandbox_key, live_server
):
    """Before: any `Bearer sk_test_…` listed every company's events (names, e-mails, payment
    intents) and could refund anyone's payment. Now a wrong key gets Stripe's 401 and learns
    and changes nothing; the portal's own key still works."""
    placed, session_id = await checkout(person, kind="topup", hours="2", products=["inventor"])
    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    paid = await sandbox.v1.checkout.sessions.retrieve_async(session_id)
    customer = await sandbox.v1.customers.retrieve_async(paid.customer)
    secrets_seen = (customer.email, customer.name, paid.payment_intent, session_id)

    api = f"{live_server}/sandbox/stripe"
    calls = [
        ("GET", "/v1/events", None),
        ("GET", f"/v1/customers/{customer.id}", None),
        ("POST", "/v1/customers", {"name": "Inntrenger"}),
        ("GET", f"/v1/checkout/sessions/{session_id}", None),
        ("POST", "/v1/checkout/sessions", {"mode": "payment"}),
        ("POST", "/v1/refunds", {"payment_intent": paid.payment_intent}),
    ]
    # The old fixed sandbox key, a key from Stripe's docs, and the portal's key with its
    # last character changed.
    wrong_keys = ["sk_test_sandbox", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", sandbox_key[:-1] + "x"]
    async with httpx.AsyncClient(base_url=api) as outsider:
        for key in wrong_keys:
            for method, path, data in calls:
                response = await outsider.request(
                    method, path, data=data, headers={"Authorization": f"Bearer {key}"}
                )
                assert response.status_code == 401, (key, method, path)
                assert response.json()["error"]["code"] == "invalid_api_key"
                assert not any(secret in response.text for secret in secrets_seen)

    # A refund, had one gone through, would be an event about the payment, answered by now.
    settled = await settled_events(sandbox, session_id, paid.payment_intent)
    assert "checkout.session.completed" in settled and "charge.refunded" not in settled
    assert (await Order.objects().get(Order.id == placed.id)).status == "paid"
    assert (await Lot.objects().get(Lot.order == placed.id)).remaining_minutes == 120
    listing = await sandbox.v1.events.list_async(params={"limit": 100})
    objects = [(e.type, e.data.object.to_dict()) for e in listing.data]
    assert any(obj["id"] == session_id for _, obj in objects)
    assert not any(
        kind == "charge.refunded" and obj["payment_intent"] == paid.payment_intent
        for kind, obj in objects
    )


async def test_paying_charges_and_the_paid_poll_tell_the_page_the_balance_changed(person, sandbox):
    """The dashboard's regions refresh on `balance-changed` (backend/web/events.py): placing
    the payment of hourly charges announces it, and so does the order-status poll's answer
    once the order is paid, not while it waits."""
    from backend.services import coverage
    from backend.web.events import BALANCE_CHANGED

    company_id = (await person.get("/api/v1/account")).json()["company"]["id"]
    superuser = await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )
    ticket = await make_ticket(company_id)
    await coverage.record_time_entry(
        ticket=ticket,
        technician=superuser,
        actual=30,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"poll-{ticket.id}",
    )
    htmx = {"HX-Request": "true", "HX-Target": "charges-pay"}
    token = await csrf(person, "/portal/charges")
    placed = await person.post(
        "/portal/orders", data={"kind": "charges", "_csrf_token": token}, headers=htmx
    )
    assert placed.status_code == 200 and "hx-redirect" in placed.headers
    assert placed.headers["hx-trigger"] == BALANCE_CHANGED
    session_id = placed.headers["hx-redirect"].rsplit("/", 1)[1]
    paid = await Order.objects().get(Order.stripe_session_id == session_id)

    poll = {"HX-Request": "true", "HX-Target": "order-status"}
    waiting = await person.get(f"/portal/orders/{paid.id}/status", headers=poll)
    assert "Venter på betaling" in waiting.text and "hx-trigger" not in waiting.headers
    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(paid.id, "paid"))
    final = await person.get(f"/portal/orders/{paid.id}/status", headers=poll)
    assert "Betalt" in final.text
    assert final.headers["hx-trigger"] == BALANCE_CHANGED
    region = await person.get(
        "/portal", headers={"HX-Request": "true", "HX-Target": "charges-summary"}
    )
    assert "Ingenting utestående." in region.text
