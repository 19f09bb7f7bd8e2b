"""A local payments sandbox that speaks the part of Stripe's HTTP API the portal uses.

Without Stripe keys (development and tests only) the portal points the official SDK at this
app (`StripeClient(secret_key, base_addresses={"api": "<public_url>"})`); it creates customers
and Checkout Sessions, serves a hosted checkout page marked «Testmodus», sends signed webhooks
and takes refunds. It imports nothing from the portal, so real Stripe can replace it by
configuration alone. State is in memory, per app instance (see state.py). Like Stripe, it
answers only its own secret key, and sends browsers back only to the origins it was given.

Mounting in the portal (one line in its route handlers):

    sandbox_mount(create_sandbox_app(webhook_url=..., webhook_secret=..., public_url=...,
                                     secret_key=..., allowed_origins=[...]))

Litestar strips the mount prefix: a request for /sandbox/stripe/v1/customers reaches the
mounted app with scope["path"] == "/v1/customers/" (a trailing slash added, which Litestar's
router ignores); the original stays in scope["raw_path"].
"""

from __future__ import annotations

from litestar import Litestar
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import Receive, Scope, Send

from .app import create_sandbox_app, sandbox_app
from .pages import format_amount
from .state import API_VERSION, Sandbox, StripeError
from .webhooks import DEFAULT_RETRY_DELAYS, EventRecord, WebhookDispatcher, sign

DEFAULT_MOUNT_PATH = "/sandbox/stripe"

__all__ = [
    "API_VERSION",
    "DEFAULT_MOUNT_PATH",
    "DEFAULT_RETRY_DELAYS",
    "EventRecord",
    "Sandbox",
    "StripeError",
    "WebhookDispatcher",
    "create_sandbox_app",
    "format_amount",
    "sandbox_app",
    "sandbox_mount",
    "sign",
]


def sandbox_mount(app: Litestar, path: str = DEFAULT_MOUNT_PATH) -> ASGIRouteHandler:
    """A route handler mounting the sandbox `app` at `path`, for the portal's route handlers.

    The sandbox gets a copy of the scope with a fresh `state` (so neither app sees the other's
    cached request data) and `root_path` extended by the mount path.
    """
    prefix = "/" + path.strip("/")

    @asgi(prefix, is_mount=True, copy_scope=True, name="payments-sandbox")
    async def payments_sandbox(scope: Scope, receive: Receive, send: Send) -> None:
        inner: Scope = {  # type: ignore[assignment]
            **scope,
            "state": {},
            "root_path": scope.get("root_path", "") + prefix,
        }
        await app(inner, receive, send)

    return payments_sandbox
