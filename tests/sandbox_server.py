"""The payments sandbox on its own, for tests that must hold its webhooks back:
`uvicorn tests.sandbox_server:create_app --factory` with SANDBOX_* variables (the key it
accepts, and the portal origins its sessions may return to, comma-separated)."""

from __future__ import annotations

import os

from litestar import Litestar

from backend.sandbox import create_sandbox_app


def create_app() -> Litestar:
    return create_sandbox_app(
        webhook_url=os.environ["SANDBOX_WEBHOOK_URL"],
        webhook_secret=os.environ["SANDBOX_WEBHOOK_SECRET"],
        public_url=os.environ["SANDBOX_PUBLIC_URL"],
        secret_key=os.environ["SANDBOX_SECRET_KEY"],
        allowed_origins=os.environ["SANDBOX_ALLOWED_ORIGINS"].split(","),
    )
