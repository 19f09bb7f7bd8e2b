"""Who is signed in, who may go where, and the headers every response carries."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Message, Scope

from backend.services.users import get_active_user

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'; "
    # Pico CSS draws its field icons (valid, invalid, select arrows) as data: SVG images.
    "img-src 'self' data:"
)


class SessionUserMiddleware(AbstractAuthenticationMiddleware):
    """Puts the signed-in user (or None) on every request; guards decide who may pass."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        user_id = connection.scope.get("session", {}).get("user_id")
        user = await get_active_user(user_id) if isinstance(user_id, int) else None
        return AuthenticationResult(user=user, auth=None)


def security_headers(production: bool) -> Any:
    """A before_send hook, so static files and error responses get the headers too."""

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"
        # Pages differ for htmx requests (fragment) and plain ones (whole page).
        headers.add("Vary", "HX-Request")
        if scope["path"].startswith(("/portal", "/staff")):
            headers["Cache-Control"] = "no-store"
        if production:
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"

    return add_headers
