"""Jinja set-up and the three ways a handler answers: a page, a fragment, or a redirect."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from litestar import Request
from litestar.plugins.htmx import ClientRedirect
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Response, Template

from backend import i18n
from backend.services import policy
from backend.services.availability import OSLO
from backend.services.money import format_nok
from backend.services.tickets import ticket_number
from backend.services.validation import format_org_number, format_phone

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "frontend" / "templates"


def _date(value: datetime.date | None) -> str:
    return format_date(value, "dd.MM.yyyy", locale="nb_NO") if value else ""


def _datetime(value: datetime.datetime | None, pattern: str = "dd.MM.yyyy HH:mm") -> str:
    if value is None:
        return ""
    return format_datetime(value, pattern, tzinfo=OSLO, locale=i18n.babel_locale())


@pass_context
def _can(context: Context, action: str, obj: Any = None) -> bool:
    """Templates ask the policy too: `{% if can("buy") %}`, `can("reply", ticket)`."""
    request = context.get("request")
    return policy.can(request.scope.get("user") if request else None, action, obj)


def create_template_engine() -> JinjaTemplateEngine:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        nok=format_nok,
        date=_date,
        datetime=_datetime,
        org_number=format_org_number,
        phone=format_phone,
        ticket_number=ticket_number,
    )
    env.globals.update(
        languages=i18n.LANGUAGES,
        current_language=i18n.current_language.get,
        can=_can,
        # Whose messages are support's, in a thread.
        staff_roles=policy.STAFF,
    )
    return JinjaTemplateEngine.from_environment(env)


def wants_fragment(request: Request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def page(request: Request, template_name: str, status_code: int = 200, **context: Any) -> Template:
    """A whole page, or only its main region when htmx asks (boosted navigation)."""
    return Template(
        template_name,
        context={**context, "partial": wants_fragment(request)},
        status_code=status_code,
    )


def form_response(
    request: Request, page_name: str, fragment_name: str, status_code: int, **context: Any
) -> Template:
    """A form's own region for htmx, the whole page for a plain post (JavaScript off)."""
    if wants_fragment(request):
        return Template(fragment_name, context=context, status_code=status_code)
    return page(request, page_name, status_code=status_code, **context)


def redirect(request: Request, url: str) -> Response:
    if wants_fragment(request):
        response = ClientRedirect(url)
        response.status_code = 200  # else a POST handler's default, 201
        return response
    return Redirect(url, status_code=303)
