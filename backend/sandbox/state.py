"""The sandbox's memory: customers, Checkout Sessions, PaymentIntents, charges, refunds, events.

Everything lives in plain dicts on one `Sandbox` instance (one per app): nothing is persisted,
a restart forgets every object, and two app instances (two processes) do not share state. The
methods are synchronous and run on the event loop between awaits, so one API call is applied
atomically with respect to the others. Objects are stored in Stripe's JSON shape (`id`,
`object`, `created`, `livemode: false`, …) and copied when returned or put into an event.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import string
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .webhooks import (
    DEFAULT_DELIVERY_TIMEOUT,
    DEFAULT_RETRY_DELAYS,
    EventRecord,
    WebhookDispatcher,
)

# The API version the events claim; the SDK (stripe 16.1) pins this one.
API_VERSION = "2026-10-28.endive"
SESSION_LIFETIME = 24 * 3600
MIN_EXPIRES_IN = 30 * 60
IDEMPOTENCY_TTL = 24 * 3600
MAX_AMOUNT = 99_999_999
# Stripe's minimum charge amounts (smallest currency unit) for the currencies likely here.
MINIMUM_CHARGE = {"nok": 300, "sek": 300, "dkk": 250, "eur": 50, "usd": 50, "gbp": 30}
OUTCOMES = ("paid", "declined", "async_pending", "async_succeeded", "async_failed")

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class StripeError(Exception):
    """An API error in Stripe's shape: {"error": {"type", "code", "param", "message"}}."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param
    )


@dataclass(frozen=True)
class RequestInfo:
    """The API request behind a change; None for actions taken on the hosted page."""

    id: str
    idempotency_key: str | None


@dataclass
class StoredResponse:
    """An idempotent request's answer, replayed for the same key (24 hours)."""

    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    request_id: str
    at: float


@dataclass
class SessionRecord:
    obj: dict[str, Any]
    line_items: list[dict[str, Any]]
    payment_intent_data: dict[str, Any] = field(default_factory=dict)
    last_decline: float | None = None


class Sandbox:
    """In-memory Stripe stand-in. Knobs: `retry_delays` (seconds between webhook attempts),
    `delivery_timeout`, `clock` (a `time.time`-like callable).

    `secret_key` is the one API key it answers (like an account's secret key); Checkout
    Sessions may send browsers back only to `allowed_origins` (scheme://host[:port]), so the
    hosted page cannot be used to lead anyone elsewhere.
    """

    def __init__(
        self,
        *,
        webhook_url: str,
        webhook_secret: str,
        public_url: str,
        secret_key: str,
        allowed_origins: Iterable[str],
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret_key.startswith("sk_test_") or len(secret_key) <= len("sk_test_"):
            raise ValueError("the sandbox needs a secret key of its own (sk_test_…)")
        origins = {url: origin(url) for url in allowed_origins}
        if not origins or None in origins.values():
            raise ValueError(f"allowed_origins must be absolute http(s) origins, not {origins}")
        self.secret_key = secret_key
        self.allowed_origins = frozenset(o for o in origins.values() if o)
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.webhooks = WebhookDispatcher(
            url=webhook_url,
            secret=webhook_secret,
            retry_delays=retry_delays,
            timeout=delivery_timeout,
            clock=clock,
        )
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.events: dict[str, EventRecord] = {}  # in creation order
        self.idempotency: dict[str, StoredResponse] = {}
        self._expiry_timers: dict[str, asyncio.TimerHandle] = {}

    def now(self) -> int:
        return int(self.clock())

    def allows_redirect(self, url: str | None) -> bool:
        return bool(url) and origin(url) in self.allowed_origins

    async def aclose(self) -> None:
        for timer in self._expiry_timers.values():
            timer.cancel()
        self._expiry_timers.clear()
        await self.webhooks.aclose()

    # --- events --------------------------------------------------------------------------------

    def _emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        request: RequestInfo | None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> EventRecord:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        record = EventRecord(
            event={
                "id": new_id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": self.now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 0,
                "request": {
                    "id": request.id if request else None,
                    "idempotency_key": request.idempotency_key if request else None,
                },
                "type": event_type,
            },
            delivered=not self.webhooks.enabled,
        )
        self.events[record.id] = record
        self.webhooks.deliver(record)
        return record

    def get_event(self, event_id: str) -> dict[str, Any]:
        record = self.events.get(event_id)
        if record is None:
            raise no_such("event", event_id)
        return record.snapshot()

    def list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        records: Iterable[EventRecord] = reversed(self.events.values())
        types: list[str] = []
        if params.get("type"):
            types.append(params["type"])
        types.extend(params.get("types") or [])
        if types:
            records = [r for r in records if any(_type_matches(t, r.event["type"]) for t in types)]
        created = params.get("created")
        if created not in (None, ""):
            records = [r for r in records if _created_matches(created, r.event["created"])]
        if params.get("delivery_success") is not None:
            wanted = params["delivery_success"]
            records = [r for r in records if (r.delivered and not r.in_flight) == wanted]
        return _paginate([r.snapshot() for r in records], params, "/v1/events")

    def resend_event(self, event_id: str) -> dict[str, Any]:
        record = self.events.get(event_id)
        if record is None:
            raise no_such("event", event_id)
        if not self.webhooks.enabled:
            raise StripeError("The sandbox has no webhook URL to send events to.")
        self.webhooks.deliver(record, resend=True)
        return record.snapshot()

    # --- customers -----------------------------------------------------------------------------

    def create_customer(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        email = params.get("email") or None
        if email is not None and "@" not in email:
            raise StripeError(
                f"Invalid email address: {email}", code="email_invalid", param="email"
            )
        customer = {
            "id": new_id("cus", 14),
            "object": "customer",
            "address": _address(params.get("address")),
            "balance": params.get("balance") or 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description") or None,
            "discount": None,
            "email": email,
            "invoice_prefix": params.get("invoice_prefix") or secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": _metadata(params.get("metadata")),
            "name": params.get("name") or None,
            "next_invoice_sequence": params.get("next_invoice_sequence") or 1,
            "phone": params.get("phone") or None,
            "preferred_locales": params.get("preferred_locales") or [],
            "shipping": None,
            "tax_exempt": params.get("tax_exempt") or "none",
            "test_clock": None,
        }
        self.customers[customer["id"]] = customer
        return copy.deepcopy(customer)

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        if customer_id not in self.customers:
            raise no_such("customer", customer_id)
        return copy.deepcopy(self.customers[customer_id])

    # --- Checkout Sessions ---------------------------------------------------------------------

    def create_session(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        mode = params.get("mode")
        if not mode:
            raise StripeError(
                "Missing required param: mode.", code="parameter_missing", param="mode"
            )
        if mode != "payment":
            raise StripeError("sandbox supports only mode=payment", param="mode")
        ui_mode = params.get("ui_mode")
        if ui_mode not in (None, "hosted", "hosted_page"):
            raise StripeError("sandbox supports only the hosted page (ui_mode)", param="ui_mode")
        customer_id = params.get("customer") or None
        customer_email = params.get("customer_email") or None
        if customer_id and customer_email:
            raise StripeError(
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if customer_id and customer_id not in self.customers:
            raise StripeError(
                f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
            )
        for name in ("success_url", "cancel_url"):
            if params.get(name) and not self.allows_redirect(params[name]):
                raise StripeError(
                    "Not a valid URL: the payments sandbox sends browsers back only to "
                    + ", ".join(sorted(self.allowed_origins)),
                    code="url_invalid",
                    param=name,
                )

        created = self.now()
        line_items, currency, subtotal = self._line_items(params.get("line_items"), created)
        minimum = MINIMUM_CHARGE.get(currency, 1)
        if subtotal < minimum:
            raise StripeError(
                "The Checkout Session's total amount due must add up to at least "
                f"{minimum} (smallest {currency} unit).",
                code="amount_too_small",
                param="line_items",
            )
        if subtotal > MAX_AMOUNT:
            raise StripeError(
                f"The total amount must be no more than {MAX_AMOUNT} (smallest currency unit).",
                code="amount_too_large",
                param="line_items",
            )
        expires_at = params.get("expires_at")
        if expires_at is None:
            expires_at = created + SESSION_LIFETIME
        elif expires_at < created + MIN_EXPIRES_IN:
            raise StripeError(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                "creation.",
                param="expires_at",
            )
        elif expires_at > created + SESSION_LIFETIME:
            raise StripeError(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )
        payment_intent_data = params.get("payment_intent_data") or {}
        _metadata(payment_intent_data.get("metadata"), "payment_intent_data[metadata]")
        session_id = new_id("cs_test", 58)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": subtotal,
            "amount_total": subtotal,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": None,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id") or None,
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": created,
            "currency": currency,
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer_id,
            "customer_account": None,
            "customer_creation": None if customer_id else "if_required",
            "customer_details": None,
            "customer_email": customer_email,
            "discounts": [],
            "expires_at": expires_at,
            "invoice": None,
            "invoice_creation": {
                "enabled": False,
                "invoice_data": {
                    "account_tax_ids": None,
                    "custom_fields": None,
                    "description": None,
                    "footer": None,
                    "issuer": None,
                    "metadata": {},
                    "rendering_options": None,
                },
            },
            "livemode": False,
            "locale": params.get("locale") or None,
            "metadata": _metadata(params.get("metadata")),
            "mode": "payment",
            "origin_context": None,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": params.get("submit_type") or None,
            "subscription": None,
            "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted_page",
            "url": f"{self.public_url}/checkout/{session_id}",
            "wallet_options": None,
        }
        self.sessions[session_id] = SessionRecord(
            obj=session, line_items=line_items, payment_intent_data=payment_intent_data
        )
        self._schedule_expiry(session_id, expires_at - created)
        return copy.deepcopy(session)

    def _line_items(self, items: Any, created: int) -> tuple[list[dict[str, Any]], str, int]:
        if not items:
            raise StripeError(
                "Missing required param: line_items.", code="parameter_missing", param="line_items"
            )
        result: list[dict[str, Any]] = []
        currencies: set[str] = set()
        for index, item in enumerate(items):
            path = f"line_items[{index}]"
            if item.get("price"):
                raise StripeError(
                    "sandbox supports only price_data (no Price objects)", param=f"{path}[price]"
                )
            price_data = item.get("price_data")
            if not price_data:
                raise StripeError(
                    f"Missing required param: {path}[price_data].",
                    code="parameter_missing",
                    param=f"{path}[price_data]",
                )
            if "quantity" not in item:
                raise StripeError(
                    f"Quantity is required. Add `quantity` to `{path}`",
                    code="parameter_missing",
                    param=f"{path}[quantity]",
                )
            quantity = item["quantity"]
            if quantity < 1:
                raise StripeError(
                    "This value must be greater than or equal to 1.",
                    code="parameter_invalid_integer",
                    param=f"{path}[quantity]",
                )
            if price_data.get("recurring"):
                raise StripeError(
                    "You specified `payment` mode but passed a recurring price. Either switch "
                    "to `subscription` mode or use only one-time prices.",
                    param=f"{path}[price_data][recurring]",
                )
            currency = price_data["currency"].lower()
            if len(currency) != 3 or not currency.isalpha():
                raise StripeError(
                    f"Invalid currency: {currency}", param=f"{path}[price_data][currency]"
                )
            currencies.add(currency)
            unit_amount = _unit_amount(price_data, f"{path}[price_data]")
            product_data = price_data.get("product_data")
            if not product_data:
                param = f"{path}[price_data][product_data]"
                if price_data.get("product"):
                    raise StripeError("sandbox supports only product_data", param=param)
                raise StripeError(
                    f"Missing required param: {param}.", code="parameter_missing", param=param
                )
            amount = unit_amount * quantity
            result.append(
                {
                    "id": new_id("li"),
                    "object": "item",
                    "adjustable_quantity": None,
                    "amount_discount": 0,
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "currency": currency,
                    "description": product_data["name"],
                    "metadata": _metadata(item.get("metadata"), f"{path}[metadata]"),
                    "price": {
                        "id": new_id("price"),
                        "object": "price",
                        "active": False,
                        "billing_scheme": "per_unit",
                        "created": created,
                        "currency": currency,
                        "custom_unit_amount": None,
                        "livemode": False,
                        "lookup_key": None,
                        "metadata": {},
                        "nickname": None,
                        "product": new_id("prod", 14),
                        "recurring": None,
                        "tax_behavior": price_data.get("tax_behavior") or "unspecified",
                        "tiers_mode": None,
                        "transform_quantity": None,
                        "type": "one_time",
                        "unit_amount": unit_amount,
                        "unit_amount_decimal": str(unit_amount),
                    },
                    "quantity": quantity,
                }
            )
        if len(currencies) > 1:
            raise StripeError("All line items must use the same currency.", param="line_items")
        return result, currencies.pop(), sum(item["amount_total"] for item in result)

    def _schedule_expiry(self, session_id: str, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: expiry is still noticed whenever the session is touched
        self._expiry_timers[session_id] = loop.call_later(
            max(delay, 0.0), self._expire_if_due, session_id
        )

    def _expire_if_due(self, session_id: str) -> None:
        self._expiry_timers.pop(session_id, None)
        record = self.sessions.get(session_id)
        if record is None or record.obj["status"] != "open":
            return
        remaining = record.obj["expires_at"] - self.clock()
        if remaining > 0:
            self._schedule_expiry(session_id, max(remaining, 1.0))
            return
        self._expire(record, None)

    def _session(self, session_id: str) -> SessionRecord:
        record = self.sessions.get(session_id)
        if record is None:
            raise no_such("checkout.session", session_id, param="session")
        if record.obj["status"] == "open" and self.clock() >= record.obj["expires_at"]:
            self._expire(record, None)
        return record

    def session_record(self, session_id: str) -> SessionRecord:
        return self._session(session_id)

    def get_session(self, session_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._session(session_id).obj)

    def list_line_items(self, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        record = self._session(session_id)
        url = f"/v1/checkout/sessions/{session_id}/line_items"
        return _paginate(copy.deepcopy(record.line_items), params, url)

    def _expire(self, record: SessionRecord, request: RequestInfo | None) -> None:
        record.obj["status"] = "expired"
        timer = self._expiry_timers.pop(record.obj["id"], None)
        if timer is not None:
            timer.cancel()
        self._emit("checkout.session.expired", record.obj, request)

    def expire_session(self, session_id: str, request: RequestInfo) -> dict[str, Any]:
        record = self._session(session_id)
        if record.obj["status"] != "open":
            raise StripeError(
                "Only Checkout Sessions with a status in [open] can be expired. This Checkout "
                f"Session has a status of {record.obj['status']}.",
                param="session",
            )
        self._expire(record, request)
        return copy.deepcopy(record.obj)

    # --- paying ------------------------------------------------------------------------------

    def complete_session(
        self, session_id: str, outcome: str, request: RequestInfo | None
    ) -> dict[str, Any]:
        """Play the customer's part on the hosted page (or a delayed payment's result)."""
        record = self._session(session_id)
        session = record.obj
        if outcome in ("paid", "declined", "async_pending"):
            if session["status"] != "open":
                raise StripeError(
                    f"This Checkout Session is {session['status']}: it can no longer be paid.",
                    code="checkout_session_not_open",
                    param="session",
                )
            if outcome == "declined":
                record.last_decline = self.clock()
                return copy.deepcopy(session)
            intent = self._create_payment_intent(record)
            session["status"] = "complete"
            session["payment_intent"] = intent["id"]
            session["customer_details"] = self._customer_details(session)
            self._cancel_expiry(session_id)
            if outcome == "paid":
                self._succeed(record, intent)
            else:
                intent["status"] = "processing"
            self._emit("checkout.session.completed", session, request)
            return copy.deepcopy(session)
        if outcome in ("async_succeeded", "async_failed"):
            intent = self.payment_intents.get(session["payment_intent"] or "")
            if (
                session["status"] != "complete"
                or intent is None
                or intent["status"] != "processing"
            ):
                raise StripeError(
                    "This Checkout Session has no delayed payment waiting for a result.",
                    code="checkout_session_no_pending_payment",
                    param="session",
                )
            if outcome == "async_succeeded":
                self._succeed(record, intent)
                self._emit("checkout.session.async_payment_succeeded", session, request)
            else:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "The delayed payment failed (sandbox).",
                }
                self._emit("checkout.session.async_payment_failed", session, request)
            return copy.deepcopy(session)
        raise StripeError(f"Invalid outcome: must be one of {', '.join(OUTCOMES)}", param="outcome")

    def _cancel_expiry(self, session_id: str) -> None:
        timer = self._expiry_timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()

    def _customer_details(self, session: dict[str, Any]) -> dict[str, Any]:
        customer = self.customers.get(session["customer"] or "")
        email = session["customer_email"] or (customer or {}).get("email")
        return {
            "address": None,
            "business_name": None,
            "email": email or "kunde@example.com",
            "individual_name": None,
            "name": (customer or {}).get("name"),
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }

    def _create_payment_intent(self, record: SessionRecord) -> dict[str, Any]:
        session = record.obj
        data = record.payment_intent_data
        intent_id = new_id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
            "confirmation_method": "automatic",
            "created": self.now(),
            "currency": session["currency"],
            "customer": session["customer"],
            "description": data.get("description") or None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": _metadata(data.get("metadata"), "payment_intent_data[metadata]"),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": new_id("pm"),
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": data.get("receipt_email") or None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.payment_intents[intent_id] = intent
        return intent

    def _succeed(self, record: SessionRecord, intent: dict[str, Any]) -> None:
        session = record.obj
        details = session["customer_details"] or {}
        charge = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": new_id("txn"),
            "billing_details": {
                "address": None,
                "email": details.get("email"),
                "name": details.get("name"),
                "phone": None,
                "tax_id": None,
            },
            "calculated_statement_descriptor": "SANDBOX",
            "captured": True,
            "created": self.now(),
            "currency": intent["currency"],
            "customer": intent["customer"],
            "description": intent["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "fraud_details": {},
            "livemode": False,
            "metadata": copy.deepcopy(intent["metadata"]),
            "on_behalf_of": None,
            "outcome": {
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "seller_message": "Payment complete.",
                "type": "authorized",
            },
            "paid": True,
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "payment_method_details": {
                "card": {
                    "brand": "visa",
                    "country": "NO",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "funding": "credit",
                    "last4": "4242",
                    "network": "visa",
                },
                "type": "card",
            },
            "receipt_email": intent["receipt_email"],
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.charges[charge["id"]] = charge
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=charge["id"],
            last_payment_error=None,
        )
        session["payment_status"] = "paid"

    def get_payment_intent(self, intent_id: str) -> dict[str, Any]:
        if intent_id not in self.payment_intents:
            raise no_such("payment_intent", intent_id, param="intent")
        return copy.deepcopy(self.payment_intents[intent_id])

    def get_charge(self, charge_id: str) -> dict[str, Any]:
        if charge_id not in self.charges:
            raise no_such("charge", charge_id, param="charge")
        return copy.deepcopy(self.charges[charge_id])

    # --- refunds -----------------------------------------------------------------------------

    def create_refund(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        charge_id = params.get("charge") or None
        intent_id = params.get("payment_intent") or None
        if not charge_id and not intent_id:
            raise StripeError(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
                param="payment_intent",
            )
        if intent_id:
            intent = self.payment_intents.get(intent_id)
            if intent is None:
                raise StripeError(
                    f"No such payment_intent: '{intent_id}'",
                    code="resource_missing",
                    param="payment_intent",
                )
            if not intent["latest_charge"]:
                raise StripeError(
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to "
                    "refund.",
                    param="payment_intent",
                )
            if charge_id and charge_id != intent["latest_charge"]:
                raise StripeError(
                    f"The charge {charge_id} does not belong to PaymentIntent {intent_id}.",
                    param="charge",
                )
            charge_id = intent["latest_charge"]
        charge = self.charges.get(charge_id)
        if charge is None:
            raise StripeError(
                f"No such charge: '{charge_id}'", code="resource_missing", param="charge"
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(
                f"Charge {charge_id} has already been refunded.",
                code="charge_already_refunded",
                param="charge",
            )
        amount = params.get("amount", remaining)
        if amount < 1:
            raise StripeError(
                "This value must be greater than or equal to 1.",
                code="parameter_invalid_integer",
                param="amount",
            )
        if amount > remaining:
            raise StripeError(
                f"Refund amount ({_money(amount, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({_money(remaining, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": new_id("txn"),
            "charge": charge_id,
            "created": self.now(),
            "currency": charge["currency"],
            "customer": charge["customer"],
            "customer_account": None,
            "destination_details": {"card": {"type": "refund"}, "type": "card"},
            "metadata": _metadata(params.get("metadata")),
            "payment_intent": charge["payment_intent"],
            "payment_method": charge["payment_method"],
            "reason": params.get("reason") or None,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.refunds[refund["id"]] = refund
        previous = {"amount_refunded": charge["amount_refunded"]}
        charge["amount_refunded"] += amount
        if charge["amount_refunded"] == charge["amount"]:
            previous["refunded"] = charge["refunded"]
            charge["refunded"] = True
        self._emit("charge.refunded", charge, request, previous_attributes=previous)
        return copy.deepcopy(refund)

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        if refund_id not in self.refunds:
            raise no_such("refund", refund_id, param="refund")
        return copy.deepcopy(self.refunds[refund_id])

    # --- expand ------------------------------------------------------------------------------

    def find(self, object_id: str) -> dict[str, Any] | None:
        prefix = object_id.split("_", 1)[0]
        if object_id.startswith("cs_"):
            record = self.sessions.get(object_id)
            return record.obj if record else None
        if prefix == "evt":
            event = self.events.get(object_id)
            return event.snapshot() if event else None
        table = {
            "cus": self.customers,
            "pi": self.payment_intents,
            "ch": self.charges,
            "re": self.refunds,
        }.get(prefix)
        return None if table is None else table.get(object_id)

    def expand(self, obj: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
        """Replace ids by objects along each dotted path, as Stripe's `expand[]` does."""
        for path in paths:
            self._expand(obj, path.split("."), path)
        return obj

    def _expand(self, obj: dict[str, Any], parts: list[str], full: str) -> None:
        head, rest = parts[0], parts[1:]
        if obj.get("object") == "list" and head == "data":
            if rest:
                for item in obj["data"]:
                    self._expand(item, rest, full)
            return
        if obj.get("object") == "checkout.session" and head == "line_items":
            if not isinstance(obj.get("line_items"), dict):
                obj["line_items"] = self.list_line_items(obj["id"], {})
        elif head not in obj:
            raise StripeError(f"This property cannot be expanded ({full}).", param="expand")
        value = obj[head]
        if isinstance(value, str):
            target = self.find(value)
            if target is None:
                raise StripeError(f"This property cannot be expanded ({full}).", param="expand")
            obj[head] = value = copy.deepcopy(target)
        if rest and isinstance(value, dict):
            self._expand(value, rest, full)


# --- helpers ------------------------------------------------------------------------------------


def _metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe's limits: at most 50 keys, keys up to 40 characters, values up to 500."""
    if not isinstance(value, dict):
        return {}
    if len(value) > 50:
        raise StripeError("You can have at most 50 metadata keys.", param=param)
    for key, item in value.items():
        if len(key) > 40:
            raise StripeError(
                f"Metadata keys can have at most 40 characters: '{key}'.", param=f"{param}[{key}]"
            )
        if len(item) > 500:
            raise StripeError(
                "Metadata values can have at most 500 characters.", param=f"{param}[{key}]"
            )
    return {key: item for key, item in value.items() if item != ""}


def _address(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    keys = ("city", "country", "line1", "line2", "postal_code", "state")
    return {key: value.get(key) for key in keys}


def origin(url: str) -> str | None:
    """The origin of an absolute http(s) URL: "scheme://host[:port]", lowercase, without a
    default port.

    None for anything a browser might read differently from urlsplit: backslashes (browsers
    treat them as "/", so "https://evil.example\\@portal/" goes to evil.example), spaces,
    control or non-ASCII characters, and user info.
    """
    if not url or "\\" in url or any(not 0x20 < ord(char) < 0x7F for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + ("" if port in (None, default_port) else f":{port}")


def _unit_amount(price_data: dict[str, Any], path: str) -> int:
    if "unit_amount" in price_data:
        amount = price_data["unit_amount"]
    elif "unit_amount_decimal" in price_data:
        decimal = price_data["unit_amount_decimal"]
        if decimal != decimal.to_integral_value():
            raise StripeError(
                "sandbox supports only whole amounts in unit_amount_decimal",
                param=f"{path}[unit_amount_decimal]",
            )
        amount = int(decimal)
    else:
        raise StripeError(
            f"Missing required param: {path}[unit_amount].",
            code="parameter_missing",
            param=f"{path}[unit_amount]",
        )
    if amount < 0:
        raise StripeError(
            "This value must be greater than or equal to 0.",
            code="parameter_invalid_integer",
            param=f"{path}[unit_amount]",
        )
    return amount


def _money(amount: int, currency: str) -> str:
    return f"{currency.upper()} {amount / 100:.2f}"


def _type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _created_matches(created: Any, value: int) -> bool:
    if isinstance(created, int):
        return value == created
    if not isinstance(created, dict):
        return True
    checks = {
        "gt": lambda bound: value > bound,
        "gte": lambda bound: value >= bound,
        "lt": lambda bound: value < bound,
        "lte": lambda bound: value <= bound,
    }
    return all(checks[key](bound) for key, bound in created.items() if key in checks)


def _paginate(items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """A Stripe list object over `items` (already in the API's order)."""
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise StripeError(
            "This value must be between 1 and 100.", code="parameter_invalid_integer", param="limit"
        )
    ids = [item["id"] for item in items]
    if params.get("starting_after"):
        cursor = params["starting_after"]
        if cursor not in ids:
            raise no_such("object", cursor, param="starting_after")
        window = items[ids.index(cursor) + 1 :]
        page, has_more = window[:limit], len(window) > limit
    elif params.get("ending_before"):
        cursor = params["ending_before"]
        if cursor not in ids:
            raise no_such("object", cursor, param="ending_before")
        window = items[: ids.index(cursor)]
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}
