"""Pages anyone may see: the offer, the language switch and the health check."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from backend.i18n import LANGUAGES
from backend.services import catalog, health, users
from backend.services.availability import availability_now
from backend.web.templating import page

LANGUAGE_COOKIE = "lang"


def remember_language(response: Response, language: str) -> None:
    """The browser's language (for its pages while nobody is signed in on it)."""
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, samesite="lax")


def safe_next(url: str | None, default: str = "/") -> str:
    """Only paths on this site: never `//evil.example` or an absolute URL."""
    if url and url.startswith("/") and not url.startswith(("//", "/\\")):
        return url
    return default


class PublicController(Controller):
    @get("/", name="home")
    async def home(self, request: Request) -> Template:
        offer = await catalog.current_offer()
        availability = availability_now(offer.business.extra_closed_days)
        return page(request, "home.html", offer=offer, availability=availability)

    @get("/language/{code:str}", name="language")
    async def switch_language(self, request: Request, code: FromPath[str]) -> Redirect:
        response = Redirect(safe_next(request.query_params.get("next")), status_code=303)
        # A GET that changes what is stored: only from our own pages (or typed in), never from
        # a link on another site (browsers name the site that started a navigation).
        if request.headers.get("sec-fetch-site") in {"cross-site", "same-site"}:
            return response
        if code in LANGUAGES:
            remember_language(response, code)
            # A signed-in user's choice is theirs on every browser, and for their mails.
            if (user := request.scope.get("user")) is not None:
                await users.set_language(user, code)
        return response

    @get("/favicon.ico", name="favicon", include_in_schema=False)
    async def favicon(self) -> Redirect:
        # Browsers ask for /favicon.ico on pages that name no icon (the sandbox's, say).
        return Redirect("/static/favicon.svg", status_code=301)

    @get("/healthz", name="healthz", exclude_from_auth=True)
    async def healthz(self) -> Response[dict[str, str]]:
        if not await health.database_ok():
            return Response({"status": "error", "database": "unavailable"}, status_code=503)
        return Response({"status": "ok", "database": "ok"})
