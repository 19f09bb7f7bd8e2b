"""The payments sandbox, driven through the official Stripe SDK only.

The sandbox is mounted (as the portal mounts it) in a tiny Litestar app that also receives its
webhooks at POST /hook and keeps only the events whose signature `stripe.Webhook.
construct_event` accepts. uvicorn serves that app for real on a free loopback port, in a
background thread, so the tests can also look at the sandbox's memory (delivery attempts).
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import stripe
import stripe.params.checkout
import uvicorn
from litestar import Litestar, Request, Response, post

from backend.sandbox import (
    EventRecord,
    Sandbox,
    WebhookDispatcher,
    create_sandbox_app,
    format_amount,
    sandbox_app,
    sandbox_mount,
)
from backend.sandbox.params import accepted_names

# stripe 16.1's HTTPXClient passes the encoded form as `data=<str>`, which httpx 0.28
# deprecates; the warning is the SDK's, not ours.

SECRET = "whsec_sandbox_tests"
API_KEY = "sk_test_sandbox_tests_0123456789abcdef"  # the one key this sandbox accepts
MOUNT = "/sandbox/stripe"
WAIT = 5.0  # seconds: the longest a test waits for a webhook


@dataclass
class Receiver:
    """The webhook endpoint's memory. An event whose object has metadata hook_fail=N is
    answered with 500 for its first N deliveries."""

    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, event_type: str, object_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                event
                for event in self.events
                if event["type"] == event_type and event["data"]["object"]["id"] == object_id
            ]

    async def wait_for(
        self, event_type: str, object_id: str, count: int = 1
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while True:
            found = self.received(event_type, object_id)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"{event_type} for {object_id} not received {count}x within {WAIT} s")
            await asyncio.sleep(0.02)


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Poll `check` (sync or async) until it is true, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT} s: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Live:
    base: str
    api: str
    sandbox: Sandbox
    receiver: Receiver


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _host_app(sandbox: Sandbox, receiver: Receiver) -> Litestar:
    @post("/hook", status_code=200)
    async def hook(request: Request) -> Response:
        payload = await request.body()
        try:
            event = stripe.Webhook.construct_event(
                payload, request.headers.get("stripe-signature", ""), SECRET
            ).to_dict()
        except (ValueError, stripe.SignatureVerificationError):
            with receiver.lock:
                receiver.rejected += 1
            return Response(b"bad signature", status_code=400)
        failures = int(event["data"]["object"].get("metadata", {}).get("hook_fail", 0))
        with receiver.lock:
            receiver.attempts[event["id"]] += 1
            if receiver.attempts[event["id"]] <= failures:
                return Response(b"not now", status_code=500)
            receiver.events.append(event)
        return Response(b"ok")

    return Litestar([sandbox_mount(sandbox_app(sandbox), MOUNT), hook], logging_config=None)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    sandbox = Sandbox(
        webhook_url=f"{base}/hook",
        webhook_secret=SECRET,
        public_url=f"{base}{MOUNT}",
        secret_key=API_KEY,
        allowed_origins=[base],
        retry_delays=(0.05, 0.1, 0.2, 0.2, 0.2),
    )
    receiver = Receiver()
    config = uvicorn.Config(
        _host_app(sandbox, receiver),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sandbox-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Live(base=base, api=f"{base}{MOUNT}", sandbox=sandbox, receiver=receiver)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
async def client(live: Live) -> AsyncIterator[stripe.StripeClient]:
    http_client = stripe.HTTPXClient()
    yield stripe.StripeClient(
        API_KEY,
        base_addresses={"api": live.api},
        http_client=http_client,
        max_network_retries=0,
    )
    await http_client.close_async()


def session_params(live: Live, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "nok",
                    "unit_amount": 50000,
                    "product_data": {"name": "Supporttimer"},
                },
            },
            {
                "quantity": 1,
                "price_data": {
                    "currency": "nok",
                    "unit_amount": 23450,
                    "product_data": {"name": "Oppstartsgebyr"},
                },
            },
        ],
        "success_url": f"{live.base}/done?session={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{live.base}/cancelled",
        "client_reference_id": "order-1",
        "metadata": {"order_id": "1"},
        "payment_intent_data": {"metadata": {"order_id": "1"}},
    }
    params.update(overrides)
    return params


async def new_session(client: stripe.StripeClient, live: Live, **overrides: Any) -> Any:
    return await client.v1.checkout.sessions.create_async(params=session_params(live, **overrides))


async def complete(client: stripe.StripeClient, session_id: str, outcome: str) -> Any:
    response = await client.raw_request_async(
        "post", f"/v1/test_helpers/checkout/sessions/{session_id}/complete", outcome=outcome
    )
    return client.deserialize(response, api_mode="V1")


async def events_for(client: stripe.StripeClient, object_id: str) -> list[str]:
    listing = await client.v1.events.list_async(params={"limit": 100})
    return [event.type for event in listing.data if event.data.object["id"] == object_id]


# --- wiring --------------------------------------------------------------------------------------


def test_public_api_and_parameter_names() -> None:
    signature = inspect.signature(create_sandbox_app)
    assert list(signature.parameters) == [
        "webhook_url",
        "webhook_secret",
        "public_url",
        "secret_key",
        "allowed_origins",
    ]
    assert all(p.kind is p.KEYWORD_ONLY for p in signature.parameters.values())
    assert all(p.default is p.empty for p in signature.parameters.values())
    app = create_sandbox_app(
        webhook_url="",
        webhook_secret=SECRET,
        public_url="http://x/s",
        secret_key=API_KEY,
        allowed_origins=["http://x"],
    )
    assert isinstance(app.state.sandbox, Sandbox)
    # Names come from the SDK's TypedDict, without the client-side request options.
    names = accepted_names(stripe.params.checkout.SessionCreateParams)
    assert {"line_items", "mode", "payment_intent_data", "expand", "metadata"} <= names
    assert not names & {"api_key", "idempotency_key", "stripe_account"}


def test_amount_formatting() -> None:
    assert format_amount(123450, "nok") == "1\xa0234,50\xa0kr"
    assert format_amount(5, "nok") == "0,05\xa0kr"
    assert format_amount(100_000_000, "nok") == "1\xa0000\xa0000,00\xa0kr"
    assert format_amount(1200, "eur") == "12,00\xa0EUR"


async def test_mount_serves_only_under_its_prefix(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.base) as http:
        outside = await http.get("/v1/customers/cus_x")
        unknown = await http.get(
            f"{MOUNT}/v1/nothing", headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert outside.status_code == 404
    assert unknown.status_code == 404
    assert "Unrecognized request URL (GET: /v1/nothing)" in unknown.json()["error"]["message"]


def test_a_sandbox_needs_its_own_key_and_origins() -> None:
    base = {"webhook_url": "", "webhook_secret": SECRET, "public_url": "http://x/s"}
    for key in ("", "sk_test_", "sk_live_real", "whatever"):
        with pytest.raises(ValueError):
            Sandbox(**base, secret_key=key, allowed_origins=["http://x"])
    for origins in ([], ["x"], ["ftp://x"], ["http://a\\@b"]):
        with pytest.raises(ValueError):
            Sandbox(**base, secret_key=API_KEY, allowed_origins=origins)


async def test_api_key_is_required(live: Live) -> None:
    http_client = stripe.HTTPXClient()
    clients = [
        stripe.StripeClient(key, base_addresses={"api": live.api}, http_client=http_client)
        for key in ("sk_live_nope", "sk_test_someone_elses_key", API_KEY[:-1] + "0")
    ]
    try:
        for wrong in clients:
            with pytest.raises(stripe.AuthenticationError) as refused:
                await wrong.v1.customers.create_async(params={"name": "X"})
            assert refused.value.http_status == 401
    finally:
        await http_client.close_async()


WRONG_KEYS = [
    None,  # no Authorization header
    "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc",  # someone else's test key
    "Bearer sk_live_0123456789abcdefghijkl",
    "Bearer " + API_KEY[:-4] + "abcd",  # one guess away
    "Bearer " + API_KEY + "0",  # the right key and more
    "Basic " + base64.b64encode(b"sk_test_guess:").decode(),
    API_KEY,  # no scheme
]


SECRET_CUSTOMER = {"name": "Hemmelig Mekanikk AS", "email": "okonomi@hemmelig.no"}


async def _paid_customer_session(client: stripe.StripeClient, live: Live) -> tuple[Any, Any]:
    customer = await client.v1.customers.create_async(
        params=SECRET_CUSTOMER, options={"idempotency_key": "company-1-customer"}
    )
    session = await new_session(client, live, customer=customer.id)
    return customer, await complete(client, session.id, "paid")


async def test_a_wrong_key_gets_stripes_401_and_learns_or_changes_nothing(
    client: stripe.StripeClient, live: Live
) -> None:
    """The attack: any `Bearer sk_test_…` used to list every company's events (names, e-mails,
    payment intents) and refund anyone's payment."""
    customer, session = await _paid_customer_session(client, live)
    intent = session.payment_intent
    secrets_seen = (customer.id, "Hemmelig", "hemmelig.no", intent, session.id)
    before = (
        len(live.sandbox.customers),
        len(live.sandbox.sessions),
        len(live.sandbox.refunds),
        len(live.sandbox.events),
    )
    calls = [
        ("GET", "/v1/events", None),
        ("GET", f"/v1/events/{next(iter(live.sandbox.events))}", None),
        ("GET", f"/v1/customers/{customer.id}", None),
        ("POST", "/v1/customers", {"name": "Inntrenger", "email": "x@evil.example"}),
        ("GET", f"/v1/checkout/sessions/{session.id}", None),
        ("POST", "/v1/checkout/sessions", {"mode": "payment"}),
        ("POST", "/v1/refunds", {"payment_intent": intent}),
        ("GET", f"/v1/payment_intents/{intent}", None),
        ("POST", f"/v1/test_helpers/checkout/sessions/{session.id}/complete", {"outcome": "paid"}),
        # A guessable idempotency key would replay the stored answer: the key comes first.
        ("POST", "/v1/customers", SECRET_CUSTOMER, {"Idempotency-Key": "company-1-customer"}),
    ]
    async with httpx.AsyncClient(base_url=live.api) as http:
        for header in WRONG_KEYS:
            headers = {"Authorization": header} if header else {}
            for method, path, data, *extra in calls:
                response = await http.request(
                    method, path, data=data, headers={**headers, **(extra[0] if extra else {})}
                )
                assert response.status_code == 401, (header, method, path)
                error = response.json()["error"]
                assert error["type"] == "invalid_request_error"
                if header:
                    assert error["code"] == "invalid_api_key"
                    assert error["message"].startswith("Invalid API Key provided: ")
                    assert API_KEY not in response.text
                else:
                    assert "did not provide an API key" in error["message"]
                assert not any(secret in response.text for secret in secrets_seen)
    async with httpx.AsyncClient(base_url=live.api) as http:
        response = await http.get("/v1/events", headers={"Authorization": WRONG_KEYS[1]})
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "message": "Invalid API Key provided: sk_test_****p7dc",
        }
    }
    assert before == (
        len(live.sandbox.customers),
        len(live.sandbox.sessions),
        len(live.sandbox.refunds),
        len(live.sandbox.events),
    )
    assert (
        live.sandbox.charges[live.sandbox.payment_intents[intent]["latest_charge"]][
            "amount_refunded"
        ]
        == 0
    )

    # With its own key, the same calls work (Bearer from the SDK, Basic as `curl -u key:`).
    listing = await client.v1.events.list_async(params={"limit": 100})
    assert any(event.data.object["id"] == session.id for event in listing.data)
    basic = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
    async with httpx.AsyncClient(base_url=live.api) as http:
        fetched = await http.get(f"/v1/customers/{customer.id}", headers={"Authorization": basic})
    assert fetched.status_code == 200 and fetched.json()["email"] == "okonomi@hemmelig.no"
    refund = await client.v1.refunds.create_async(params={"payment_intent": intent})
    assert refund.status == "succeeded" and refund.amount == session.amount_total


# --- customers and sessions ---------------------------------------------------------------------


async def test_customer_create_and_retrieve(client: stripe.StripeClient) -> None:
    customer = await client.v1.customers.create_async(
        params={"name": "Fjord AS", "email": "post@fjord.no", "metadata": {"company_id": "7"}},
        options={"idempotency_key": "customer-test-1"},
    )
    assert customer.id.startswith("cus_")
    assert customer.object == "customer" and customer.livemode is False
    fetched = await client.v1.customers.retrieve_async(customer.id)
    assert (fetched.name, fetched.email) == ("Fjord AS", "post@fjord.no")
    assert fetched.metadata.to_dict() == {"company_id": "7"}
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.customers.retrieve_async("cus_missing")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


async def test_create_session(client: stripe.StripeClient, live: Live) -> None:
    customer = await client.v1.customers.create_async(params={"email": "a@fjord.no"})
    session = await new_session(client, live, customer=customer.id)
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert (session.amount_subtotal, session.amount_total) == (123450, 123450)
    assert session.currency == "nok" and session.customer == customer.id
    assert (session.status, session.payment_status, session.payment_intent) == (
        "open",
        "unpaid",
        None,
    )
    assert session.url == f"{live.api}/checkout/{session.id}"
    assert session.expires_at == session.created + 24 * 3600
    assert session.metadata.to_dict() == {"order_id": "1"}
    assert session.client_reference_id == "order-1"

    items = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert items.object == "list" and not items.has_more
    assert [(i.description, i.quantity, i.amount_total) for i in items.data] == [
        ("Supporttimer", 2, 100000),
        ("Oppstartsgebyr", 1, 23450),
    ]
    assert items.data[0].price.unit_amount == 50000

    fetched = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert fetched.id == session.id and fetched.status == "open"


async def test_session_for_unknown_customer(client: stripe.StripeClient, live: Live) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await new_session(client, live, customer="cus_nobody")
    assert error.value.param == "customer"


@pytest.mark.parametrize(
    "change, param",
    [
        (lambda p: p.update(bogus="1"), "bogus"),
        (
            lambda p: p["line_items"][0]["price_data"].update(bogus="1"),
            "line_items[0][price_data][bogus]",
        ),
        (
            lambda p: p["line_items"][1]["price_data"]["product_data"].update(colour="red"),
            "line_items[1][price_data][product_data][colour]",
        ),
        (lambda p: p["payment_intent_data"].update(tip="1"), "payment_intent_data[tip]"),
    ],
)
async def test_unknown_parameter_rejected(
    client: stripe.StripeClient, live: Live, change: Callable[[dict], None], param: str
) -> None:
    params = session_params(live)
    change(params)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(params=params)
    assert error.value.http_status == 400
    assert error.value.code == "parameter_unknown"
    assert error.value.param == param
    assert error.value.user_message == f"Received unknown parameter: {param}"


async def test_missing_parameters_rejected(client: stripe.StripeClient, live: Live) -> None:
    params = session_params(live)
    del params["line_items"]
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(params=params)
    assert (error.value.code, error.value.param) == ("parameter_missing", "line_items")

    params = session_params(live)
    params["line_items"][0]["price_data"]["product_data"] = {"description": "Uten navn"}
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.create_async(params=params)
    assert error.value.code == "parameter_missing"
    assert error.value.param == "line_items[0][price_data][product_data][name]"

    with pytest.raises(stripe.InvalidRequestError) as error:
        await new_session(client, live, mode="subscription")
    assert "only mode=payment" in str(error.value.user_message)


async def test_idempotent_replay_and_conflict(client: stripe.StripeClient, live: Live) -> None:
    options: Any = {"idempotency_key": "order-42-checkout"}
    first = await client.v1.checkout.sessions.create_async(
        params=session_params(live), options=options
    )
    again = await client.v1.checkout.sessions.create_async(
        params=session_params(live), options=options
    )
    assert again.id == first.id
    assert again.last_response.headers.get("idempotent-replayed") == "true"
    assert first.last_response.headers.get("idempotent-replayed") is None

    with pytest.raises(stripe.IdempotencyError):
        await client.v1.checkout.sessions.create_async(
            params=session_params(live, client_reference_id="order-43"), options=options
        )


# --- paying ---------------------------------------------------------------------------------------


async def test_paid(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live)
    paid = await complete(client, session.id, "paid")
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert paid.payment_intent.startswith("pi_")

    events = await live.receiver.wait_for("checkout.session.completed", session.id)
    assert events[0]["data"]["object"]["payment_status"] == "paid"
    assert events[0]["api_version"] and events[0]["livemode"] is False

    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    intent = expanded.payment_intent
    assert intent.status == "succeeded" and intent.amount_received == 123450
    assert intent.metadata.to_dict() == {"order_id": "1"}
    charge = intent.latest_charge
    assert (charge.amount, charge.currency, charge.payment_intent) == (123450, "nok", intent.id)
    assert charge.metadata.to_dict() == {"order_id": "1"}

    event = await client.v1.events.retrieve_async(events[0]["id"])
    assert event.type == "checkout.session.completed"

    async def delivered() -> bool:
        return (await client.v1.events.retrieve_async(event.id)).pending_webhooks == 0

    # The receiver has the event before the sandbox has its answer.
    await eventually(delivered, "pending_webhooks == 0")
    assert live.receiver.rejected == 0

    with pytest.raises(stripe.InvalidRequestError):
        await complete(client, session.id, "paid")


async def test_declined(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live)
    declined = await complete(client, session.id, "declined")
    assert (declined.status, declined.payment_status) == ("open", "unpaid")
    assert declined.payment_intent is None
    assert await events_for(client, session.id) == []


async def test_delayed_payment_succeeds(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live)
    pending = await complete(client, session.id, "async_pending")
    assert (pending.status, pending.payment_status) == ("complete", "unpaid")
    intent = await client.v1.payment_intents.retrieve_async(pending.payment_intent)
    assert intent.status == "processing" and intent.latest_charge is None
    completed = await live.receiver.wait_for("checkout.session.completed", session.id)
    assert completed[0]["data"]["object"]["payment_status"] == "unpaid"

    with pytest.raises(stripe.InvalidRequestError):
        await complete(client, session.id, "paid")

    succeeded = await complete(client, session.id, "async_succeeded")
    assert succeeded.payment_status == "paid"
    events = await live.receiver.wait_for("checkout.session.async_payment_succeeded", session.id)
    assert events[0]["data"]["object"]["payment_status"] == "paid"
    intent = await client.v1.payment_intents.retrieve_async(pending.payment_intent)
    assert intent.status == "succeeded" and intent.latest_charge.startswith("ch_")


async def test_delayed_payment_fails(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live)
    await complete(client, session.id, "async_pending")
    failed = await complete(client, session.id, "async_failed")
    assert (failed.status, failed.payment_status) == ("complete", "unpaid")
    events = await live.receiver.wait_for("checkout.session.async_payment_failed", session.id)
    assert events[0]["data"]["object"]["payment_status"] == "unpaid"
    with pytest.raises(stripe.InvalidRequestError):
        await complete(client, session.id, "async_succeeded")
    with pytest.raises(stripe.InvalidRequestError):
        await complete(client, (await new_session(client, live)).id, "async_succeeded")


async def test_expire(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live)
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert expired.status == "expired"
    await live.receiver.wait_for("checkout.session.expired", session.id)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(session.id)
    with pytest.raises(stripe.InvalidRequestError):
        await complete(client, session.id, "paid")


async def test_refunds(client: stripe.StripeClient, live: Live) -> None:
    session = await complete(client, (await new_session(client, live)).id, "paid")
    intent_id = session.payment_intent

    partial = await client.v1.refunds.create_async(
        params={"payment_intent": intent_id, "amount": 23450, "metadata": {"reason": "test"}},
        options={"idempotency_key": "refund-1"},
    )
    assert partial.id.startswith("re_") and partial.status == "succeeded"
    assert (partial.amount, partial.payment_intent) == (23450, intent_id)
    assert (await client.v1.refunds.retrieve_async(partial.id)).amount == 23450
    charge_id = partial.charge
    refunded = await live.receiver.wait_for("charge.refunded", charge_id)
    assert refunded[0]["data"]["object"]["amount_refunded"] == 23450
    assert refunded[0]["data"]["object"]["refunded"] is False

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async(params={"payment_intent": intent_id, "amount": 100001})
    assert too_much.value.param == "amount"

    rest = await client.v1.refunds.create_async(params={"payment_intent": intent_id})
    assert rest.amount == 100000
    refunded = await live.receiver.wait_for("charge.refunded", charge_id, count=2)
    final = max(refunded, key=lambda event: event["data"]["object"]["amount_refunded"])
    assert final["data"]["object"]["amount_refunded"] == 123450
    assert final["data"]["object"]["refunded"] is True
    charge = await client.v1.charges.retrieve_async(charge_id)
    assert charge.refunded is True

    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async(params={"charge": charge_id, "amount": 1})


# --- events and webhooks -----------------------------------------------------------------------


async def test_events_list_and_resend(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live)
    await complete(client, session.id, "paid")
    (event,) = await live.receiver.wait_for("checkout.session.completed", session.id)

    listing = await client.v1.events.list_async(
        params={"type": "checkout.session.completed", "limit": 3}
    )
    assert listing.data[0].id == event["id"]  # newest first
    assert all(item.type == "checkout.session.completed" for item in listing.data)
    assert len(listing.data) <= 3

    response = await client.raw_request_async(
        "post", f"/v1/test_helpers/events/{event['id']}/resend"
    )
    resent = client.deserialize(response, api_mode="V1")
    assert resent.id == event["id"]
    again = await live.receiver.wait_for("checkout.session.completed", session.id, count=2)
    assert [e["id"] for e in again] == [event["id"], event["id"]]


async def test_webhook_retried_until_accepted(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live, metadata={"hook_fail": "2"})
    await complete(client, session.id, "paid")
    (event,) = await live.receiver.wait_for("checkout.session.completed", session.id)

    record = live.sandbox.events[event["id"]]
    # The receiver has the event before the sandbox records the answer to that attempt.
    await eventually(lambda: record.delivered and not record.in_flight, "delivery recorded")
    assert [a.status_code for a in record.attempts] == [500, 500, 200]
    assert live.receiver.attempts[event["id"]] == 3
    assert (await client.v1.events.retrieve_async(event["id"])).pending_webhooks == 0


async def test_connection_errors_are_retried_and_recorded() -> None:
    dispatcher = WebhookDispatcher(
        url=f"http://127.0.0.1:{_free_port()}/hook", secret=SECRET, retry_delays=(0.01, 0.02)
    )
    record = EventRecord(event={"id": "evt_x", "type": "ping", "data": {"object": {}}})
    dispatcher.deliver(record)
    await dispatcher.drain(timeout=WAIT)
    assert [(a.number, a.status_code, a.succeeded) for a in record.attempts] == [
        (1, None, False),
        (2, None, False),
        (3, None, False),
    ]
    assert all(a.error for a in record.attempts)
    assert record.snapshot()["pending_webhooks"] == 1


# --- the hosted page ----------------------------------------------------------------------------


async def test_hosted_page_pay(client: stripe.StripeClient, live: Live) -> None:
    session = await new_session(client, live)
    async with httpx.AsyncClient() as http:
        page = await http.get(session.url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "Testmodus" in html and '<html lang="nb">' in html and "<title>" in html
        assert "1\xa0234,50\xa0kr" in html
        assert "<script" not in html and "<style" not in html and "style=" not in html
        for outcome in ("paid", "declined", "async_pending", "cancel"):
            assert f'name="outcome" value="{outcome}"' in html

        declined = await http.post(session.url, data={"outcome": "declined"})
        assert declined.status_code == 402
        assert "Kortet ble avvist. Prøv igjen eller avbryt." in declined.text

        paid = await http.post(session.url, data={"outcome": "paid"})
        assert paid.status_code == 303
        assert paid.headers["location"] == f"{live.base}/done?session={session.id}"

        after = await http.get(session.url)
        assert 'name="outcome"' not in after.text and "fullført" in after.text

    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).payment_status == "paid"
    await live.receiver.wait_for("checkout.session.completed", session.id)


async def test_hosted_page_cancel_and_delayed(client: stripe.StripeClient, live: Live) -> None:
    cancelled = await new_session(client, live)
    delayed = await new_session(client, live)
    expired = await new_session(client, live)
    await client.v1.checkout.sessions.expire_async(expired.id)
    async with httpx.AsyncClient() as http:
        cancel = await http.post(cancelled.url, data={"outcome": "cancel"})
        assert cancel.status_code == 303
        assert cancel.headers["location"] == f"{live.base}/cancelled"

        pending = await http.post(delayed.url, data={"outcome": "async_pending"})
        assert pending.status_code == 303
        page = (await http.get(delayed.url)).text
        assert "Fullfør forsinket betaling" in page and "Avvis forsinket betaling" in page
        done = await http.post(delayed.url, data={"outcome": "async_succeeded"})
        assert done.status_code == 200 and 'name="outcome"' not in done.text

        gone = await http.get(expired.url)
        assert "utløpt" in gone.text and 'name="outcome"' not in gone.text
        missing = await http.get(f"{live.api}/checkout/cs_test_nothing")
        assert missing.status_code == 404

    await live.receiver.wait_for("checkout.session.async_payment_succeeded", delayed.id)
    assert (await client.v1.checkout.sessions.retrieve_async(cancelled.id)).status == "open"


@pytest.mark.parametrize("name", ["success_url", "cancel_url"])
@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/done",
        "{base}.evil.example/done",  # the portal's address as a prefix of another host
        "http://evil.example\\@{host}/done",  # browsers read the backslash as "/"
        "http://portal@evil.example/done",
        "http://user@{host}/done",
        "https://{host}/done",  # the portal's host, another scheme
        "http://127.0.0.1:1/done",  # another port
        "//evil.example/done",
        "javascript:alert(1)",
        "{base}/done\r\nRefresh: 0; url=https://evil.example",
    ],
)
async def test_sessions_may_send_browsers_back_only_to_the_portal(
    client: stripe.StripeClient, live: Live, name: str, url: str
) -> None:
    url = url.replace("{base}", live.base).replace("{host}", live.base.removeprefix("http://"))
    before = len(live.sandbox.sessions)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await new_session(client, live, **{name: url})
    assert refused.value.http_status == 400
    assert (refused.value.code, refused.value.param) == ("url_invalid", name)
    assert live.base in refused.value.user_message
    assert len(live.sandbox.sessions) == before


async def test_the_hosted_page_never_sends_a_browser_elsewhere(
    client: stripe.StripeClient, live: Live
) -> None:
    """Refused at creation; and should a session point elsewhere anyway, the page neither
    redirects nor links there."""
    session = await new_session(client, live)
    record = live.sandbox.session_record(session.id)
    record.obj["success_url"] = "https://evil.example/done"
    record.obj["cancel_url"] = "https://evil.example/cancel"
    async with httpx.AsyncClient() as http:
        page = await http.get(session.url)
        assert "evil.example" not in page.text and 'value="cancel"' not in page.text
        cancel = await http.post(session.url, data={"outcome": "cancel"})
        assert cancel.status_code == 409 and "location" not in cancel.headers
        paid = await http.post(session.url, data={"outcome": "paid"})
        assert paid.status_code == 200 and "location" not in paid.headers
        assert "evil.example" not in paid.text and "Betalingen er gjennomført" in paid.text
        assert "evil.example" not in (await http.get(session.url)).text
