"""Stripe's webhook: verify the signature on the raw body, then hand the event to fulfilment."""

from __future__ import annotations

import logging

from litestar import Controller, Request, post
from litestar.response import Response

from backend.services import fulfilment
from backend.services.errors import MalformedEvent
from backend.services.payments import InvalidSignature

logger = logging.getLogger("portal.webhooks")


class WebhooksController(Controller):
    @post(
        "/stripe/webhook",
        name="stripe_webhook",
        exclude_from_csrf=True,
        exclude_from_auth=True,
        status_code=200,
    )
    async def receive(self, request: Request) -> Response:
        payload = await request.body()
        payments = request.app.state.payments
        try:
            event = payments.verify_event(payload, request.headers.get("stripe-signature", ""))
            result = await fulfilment.handle_event(event, payments)
        except InvalidSignature as error:
            logger.warning("webhook refused: %s", error)
            return Response({"error": "invalid signature"}, status_code=400)
        except MalformedEvent as error:
            logger.warning("webhook refused: %s", error)
            return Response({"error": f"malformed event: {error}"}, status_code=400)
        return Response({"received": True, "result": result})
