"""Picks each request's language: a signed-in user's own (kept on the user, users.language_of),
else the `lang` cookie's; Norwegian unless English is chosen."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.i18n import DEFAULT_LANGUAGE, LANGUAGES, speaking
from backend.services.users import language_of
from backend.web.sessions import signed_in_user


def language_middleware(app: ASGIApp) -> ASGIApp:
    """Runs after the session middleware, which has read the signed-in user (if any) with the
    session: the user's choice costs no query, and holds on every browser they sign in on."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        language = DEFAULT_LANGUAGE
        if scope["type"] == "http":
            user = signed_in_user(scope)
            if user is not None:
                language = language_of(user)
            else:
                # Litestar keeps the parsed cookies in the scope: the session middleware
                # parsed them already.
                chosen = ASGIConnection(scope).cookies.get("lang")
                if chosen in LANGUAGES:
                    language = chosen
        with speaking(language):
            await app(scope, receive, send)

    return middleware
