"""The customer API (JSON). A later issue adds tokens; for now the signed-in session."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from backend.services import overview
from backend.web.guards import allowed


class ApiController(Controller):
    path = "/api/v1"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get("/account", name="api_account")
    async def account(self, request: Request) -> dict[str, Any]:
        return overview.as_json(await overview.account_summary(request.user.company))
