"""Picks each request's language from the `lang` cookie: Norwegian unless English is chosen."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.i18n import DEFAULT_LANGUAGE, LANGUAGES, speaking


def language_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        language = DEFAULT_LANGUAGE
        if scope["type"] == "http":
            # Litestar keeps the parsed cookies in the scope: the session and CSRF middleware
            # after this one read them without parsing the header again.
            chosen = ASGIConnection(scope).cookies.get("lang")
            if chosen in LANGUAGES:
                language = chosen
        with speaking(language):
            await app(scope, receive, send)

    return middleware
