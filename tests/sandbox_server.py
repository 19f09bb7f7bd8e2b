"""The payments sandbox on its own, for tests that must hold its webhooks back:
`uvicorn tests.sandbox_server:create_app --factory` with SANDBOX_* variables."""

from __future__ import annotations

import os

from litestar import Litestar

from backend.sandbox import create_sandbox_app


def create_app() -> Litestar:
    return create_sandbox_app(
        webhook_url=os.environ["SANDBOX_WEBHOOK_URL"],
        webhook_secret=os.environ["SANDBOX_WEBHOOK_SECRET"],
        public_url=os.environ["SANDBOX_PUBLIC_URL"],
    )
