"""Picks each request's language from the `lang` cookie: Norwegian unless English is chosen."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from litestar.types import ASGIApp, Receive, Scope, Send

from backend.i18n import DEFAULT_LANGUAGE, LANGUAGES, current_language


def language_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        language = DEFAULT_LANGUAGE
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                try:
                    cookie = SimpleCookie(value.decode("latin-1"))
                except CookieError:
                    continue
                if "lang" in cookie and cookie["lang"].value in LANGUAGES:
                    language = cookie["lang"].value
        token = current_language.set(language)
        try:
            await app(scope, receive, send)
        finally:
            current_language.reset(token)

    return middleware
