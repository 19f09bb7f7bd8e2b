"""Who is signed in, who may go where, and the headers every response carries."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Message, Scope

from backend.services import api_tokens
from backend.web.sessions import signed_in_user

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'; "
    # Pico CSS draws its field icons (valid, invalid, select arrows) as data: SVG images.
    "img-src 'self' data:"
)


API_PATHS = "/api/"
# `request.auth` of a request that a token speaks for.
BY_TOKEN = "api_token"


class SessionUserMiddleware(AbstractAuthenticationMiddleware):
    """Puts the signed-in user (or None) on every request; guards decide who may pass. Under
    /api/ an Authorization header, when sent, is the only credential: a bearer token speaks
    for whom services/api_tokens.py says, any other header for nobody (401), whatever
    session the request also carries."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        if connection.scope["path"].startswith(API_PATHS):
            header = connection.headers.get("authorization")
            if header is not None:
                user = await api_tokens.authenticate(header)
                return AuthenticationResult(user=user, auth=BY_TOKEN if user else None)
        return AuthenticationResult(user=signed_in_user(connection.scope), auth=None)


def security_headers(production: bool) -> Any:
    """A before_send hook, so static files and error responses get the headers too. No
    response sets these itself, so they are appended as they are (finding and replacing each
    by name cost a per cent of every page)."""
    every_response = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        # Pages differ for htmx requests (fragment) and plain ones (whole page).
        (b"vary", b"HX-Request"),
    ]
    if production:
        every_response.append(
            (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
        )
    no_store = (b"cache-control", b"no-store")

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = [*message.get("headers", ()), *every_response]
        # /password, /invitation: those pages carry their link in the address and the form.
        if scope["path"].startswith(
            ("/portal", "/staff", "/api", "/account", "/password", "/invitation")
        ):
            headers.append(no_store)
        message["headers"] = headers

    return add_headers
