"""The gateway to Stripe: the only module that imports `stripe`.

Real Stripe and the local sandbox differ only in configuration (STRIPE_SECRET_KEY,
STRIPE_WEBHOOK_SECRET, STRIPE_API_BASE). Every call is async, so a slow payment provider never
blocks the event loop, and every create call carries an idempotency key. Objects come back as
plain dicts, so the rest of the portal does not depend on the SDK's types.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import stripe

from backend.services.errors import MalformedEvent

logger = logging.getLogger("portal.payments")


class PaymentsError(Exception):
    """Stripe (or the sandbox) refused or could not be reached. `code` is Stripe's error code
    (e.g. "resource_missing"), if it gave one."""

    def __init__(self, message: str, code: str | None = None, *, uncertain: bool = False) -> None:
        super().__init__(message)
        self.code = code
        # No answer, or Stripe's own failure (5xx): the call may have been carried out. Only
        # the same call with the same idempotency key may follow, never a new one.
        self.uncertain = uncertain


class InvalidSignature(Exception):
    pass


@dataclass(frozen=True)
class CheckoutLine:
    name: str
    unit_amount_ore: int  # incl. MVA: what the customer pays
    quantity: int = 1


class Payments:
    def __init__(self, *, secret_key: str, webhook_secret: str, api_base: str | None) -> None:
        self.webhook_secret = webhook_secret
        options: dict[str, Any] = {"http_client": stripe.HTTPXClient()}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(secret_key, **options)

    async def create_customer(self, *, name: str, email: str, company_id: int) -> str:
        customer = await self._call(
            self._client.v1.customers.create_async(
                params={"name": name, "email": email, "metadata": {"company_id": str(company_id)}},
                options={"idempotency_key": f"company-{company_id}-customer"},
            )
        )
        return customer["id"]

    async def create_checkout_session(
        self,
        *,
        order_id: int,
        company_id: int,
        customer_id: str,
        lines: list[CheckoutLine],
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """A session that says whose it is: the company as client_reference_id, the order in
        metadata. Each new session for an order needs its own `idempotency_key`."""
        metadata = {"order_id": str(order_id)}
        return await self._call(
            self._client.v1.checkout.sessions.create_async(
                params={
                    "mode": "payment",
                    "customer": customer_id,
                    "client_reference_id": str(company_id),
                    "metadata": metadata,
                    "payment_intent_data": {"metadata": metadata},
                    "line_items": [
                        {
                            "quantity": line.quantity,
                            "price_data": {
                                "currency": "nok",
                                "unit_amount": line.unit_amount_ore,
                                "product_data": {"name": line.name},
                            },
                        }
                        for line in lines
                    ],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
                options={"idempotency_key": idempotency_key},
            )
        )

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return await self._call(self._client.v1.checkout.sessions.retrieve_async(session_id))

    async def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        return await self._call(self._client.v1.checkout.sessions.expire_async(session_id))

    async def retrieve_payment_intent(self, payment_intent: str) -> dict[str, Any]:
        return await self._call(self._client.v1.payment_intents.retrieve_async(payment_intent))

    async def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        return await self._call(self._client.v1.charges.retrieve_async(charge_id))

    async def refund(self, *, payment_intent: str, amount_ore: int, key: str) -> dict[str, Any]:
        return await self._call(
            self._client.v1.refunds.create_async(
                params={"payment_intent": payment_intent, "amount": amount_ore},
                options={"idempotency_key": key},
            )
        )

    def verify_event(self, payload: bytes, signature: str) -> Any:
        """The event's parsed JSON, if the signature is ours and fresh (5 minutes); else
        InvalidSignature; MalformedEvent if a signed body is not JSON. Its shape is not checked
        here: a signed body can still be `[]`."""
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"),
                signature,
                self.webhook_secret,
                tolerance=stripe.Webhook.DEFAULT_TOLERANCE,
            )
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise InvalidSignature(str(error)) from None
        try:
            return json.loads(payload)
        except (ValueError, RecursionError) as error:
            raise MalformedEvent(f"the body is not JSON: {error}") from None

    @staticmethod
    async def _call(request: Any) -> dict[str, Any]:
        try:
            result = await request
        except stripe.StripeError as error:
            uncertain = isinstance(error, stripe.APIConnectionError | stripe.APIError)
            raise PaymentsError(
                error.user_message or str(error), error.code, uncertain=uncertain
            ) from error
        return result.to_dict()


# A call to the payment provider, made once the database change that led to it is committed.
After = Callable[[Payments], Awaitable[None]]


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
