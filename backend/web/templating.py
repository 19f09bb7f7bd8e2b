"""Jinja set-up and the three ways a handler answers: a page, a fragment, or a redirect."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from jinja2 import (
    Environment,
    FileSystemLoader,
    TemplateNotFound,
    pass_context,
    pass_eval_context,
    select_autoescape,
)
from jinja2 import Template as JinjaTemplate
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from litestar import MediaType, Request
from litestar.exceptions import TemplateNotFoundException
from litestar.plugins.htmx import ClientRedirect
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Response, Template
from markupsafe import Markup

from backend import i18n
from backend.services import attachments, ledger, orders, policy, statement, tickets, time_account
from backend.services.availability import OSLO, support_hours
from backend.services.money import format_nok
from backend.services.validation import format_org_number, format_phone
from backend.web.events import REGION_TRIGGERS, SHARED_BETWEEN_TABS, announce

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "frontend" / "templates"


NUMERIC_DATETIME = "dd.MM.yyyy HH:mm"


def date_text(value: datetime.date | None) -> str:
    # Digits only, the same in every language: what Babel's "dd.MM.yyyy" gives, at a fraction
    # of its cost (lists show dozens).
    return f"{value.day:02}.{value.month:02}.{value.year}" if value else ""


def datetime_text(value: datetime.datetime | None, pattern: str = NUMERIC_DATETIME) -> str:
    if value is None:
        return ""
    if pattern == NUMERIC_DATETIME:
        return _numeric_datetime(value)
    return _worded_datetime(value, pattern, i18n.babel_locale())


# Babel's patterns cost a tenth of a small page; the times shown in words (when support opens
# again) are few and repeat.
@functools.lru_cache(maxsize=1024)
def _worded_datetime(value: datetime.datetime, pattern: str, locale: str) -> str:
    return format_datetime(value, pattern, tzinfo=OSLO, locale=locale)


# Digits only, the same in every language; the times of a list repeat each time it is shown.
@functools.lru_cache(maxsize=4096)
def _numeric_datetime(value: datetime.datetime) -> str:
    # Babel reads a naive datetime as UTC; so does this.
    aware = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    local = aware.astimezone(OSLO)
    return f"{date_text(local)} {local.hour:02}:{local.minute:02}"


def _month(value: datetime.date) -> str:
    """A month in words, in the reader's language: "des. 2026", "Dec 2026"."""
    return _worded_month(value.replace(day=1), i18n.babel_locale())


@functools.lru_cache(maxsize=256)
def _worded_month(first_day: datetime.date, locale: str, pattern: str = "MMM yyyy") -> str:
    return format_date(first_day, pattern, locale=locale)


def _short_month(value: datetime.date) -> str:
    """A month's short name alone ("des.", "Dec"): a chart's axis, with the year said once."""
    return _worded_month(value.replace(day=1), i18n.babel_locale(), "MMM")


def file_size(size: int) -> str:
    """A file's size as people read it: "820 B", "14,5 kB", "9,3 MB" (as amounts, in nb)."""
    number, unit = attachments.human_size(size)
    return f"{format_decimal(number, locale='nb_NO')} {unit}"


def page_url(path: str, filters: Mapping[str, str], number: int) -> str:
    """A list's address for page `number`, keeping the filters that are set."""
    chosen = {name: value for name, value in sorted(filters.items()) if value}
    return f"{path}?{urlencode({**chosen, 'page': number})}"


def hours_minutes(total: int) -> str:
    """Minutes as hours and minutes: "5 t 0 min"."""
    return f"{total // 60} {i18n.gettext('t')} {total % 60} {i18n.gettext('min')}"


def _translate(message: str, **variables: Any) -> Markup:
    """`_(…)` in templates for a text with variables, or one not written in the template: the
    message in the request's language, its variables escaped (as Jinja's i18n extension does
    in its "newstyle"). Literal texts are translated when the template is compiled."""
    translated = Markup(i18n.gettext(message))
    return translated % variables if variables else translated


@pass_context
def _can(context: Context, action: str, obj: Any = None) -> bool:
    """Templates ask the policy too: `{% if can("buy") %}`, `can("reply", ticket)`."""
    request = context.get("request")
    return policy.can(request.scope.get("user") if request else None, action, obj)


class _Environment(Environment):
    """One per language: its templates have their literal texts translated already."""

    language: str = i18n.DEFAULT_LANGUAGE

    def make_globals(self, d: Any) -> Any:
        # A dict, not Jinja's ChainMap: every render copies the globals into a new context,
        # and copying a ChainMap costs a sixth of a small page. Jinja asks that globals not
        # change once a template is loaded; they are all set when the engine is made.
        return {**self.globals, **(d or {})}


class _TranslatedLiterals(Extension):
    """`_("text")` with a literal and no variables becomes the translated text when a template
    is compiled for its environment's language, instead of a call on every render (a page
    has dozens). Texts with variables, and `_(variable)`, stay calls of `_translate`."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)
        translations = i18n.translations_for(self.environment.language)  # type: ignore[attr-defined]
        index = 0
        while index < len(tokens):
            window = tokens[index : index + 4]
            if [token.type for token in window] == ["name", "lparen", "string", "rparen"] and (
                window[0].value == "_" and (index == 0 or tokens[index - 1].type != "dot")
            ):
                text = translations.gettext(window[2].value)
                yield Token(window[0].lineno, "string", text)
                index += 4
            else:
                yield tokens[index]
                index += 1


class _LanguageEngine(JinjaTemplateEngine):
    """Litestar's Jinja engine over one environment per language, picked by the request's."""

    def __init__(self, environments: dict[str, Environment]) -> None:
        self.environments = environments
        super().__init__(engine_instance=environments[i18n.DEFAULT_LANGUAGE])

    def get_template(self, template_name: str) -> JinjaTemplate:
        environment = self.environments[i18n.current_language.get()]
        try:
            return environment.get_template(template_name)
        except TemplateNotFound as error:
            raise TemplateNotFoundException(template_name=template_name) from error

    def register_template_callable(self, key: str, template_callable: Any) -> None:
        for environment in self.environments.values():
            environment.globals[key] = pass_context(template_callable)


def _in_language(language: str, text: Callable[[], str]) -> str:
    with i18n.speaking(language):
        return text()


def _translated(labels: Mapping[str, str], language: str) -> dict[str, str]:
    translations = i18n.translations_for(language)
    return {key: translations.gettext(label) for key, label in labels.items()}


def _environment(language: str, auto_reload: bool, *, mail: bool = False) -> Environment:
    env = _Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        auto_reload=auto_reload,
        # A mail's text part (mail/*.txt) is plain text: escaping would show "&amp;" in it.
        autoescape=select_autoescape(["html"], default=False, default_for_string=False)
        if mail
        else select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_TranslatedLiterals],
    )
    env.language = language
    env.filters.update(
        # Babel's currency formatting is slow next to the rest of a page; amounts repeat.
        nok=_format_nok,
        date=date_text,
        datetime=datetime_text,
        month=_month,
        short_month=_short_month,
        org_number=format_org_number,
        phone=_format_phone,
        ticket_number=tickets.ticket_number,
        hours_minutes=hours_minutes,
        file_size=file_size,
        last_day=ledger.last_usable_day,
    )
    env.globals.update(
        _=_translate,
        languages=i18n.LANGUAGES,
        # The same on every page of the environment's language: worked out once.
        language=language,
        support_hours=_in_language(language, support_hours),
        page_url=page_url,
        # Labels a page shows many of, translated once for the environment's language.
        order_status_labels=_translated(orders.STATUS_LABELS, language),
        ticket_status_labels=_translated(tickets.STATUS_LABELS, language),
        entry_labels=_translated(time_account.ENTRY_LABELS, language),
        statement_labels=_translated(statement.KIND_LABELS, language),
        channel_labels=_translated(tickets.CHANNEL_LABELS, language),
        paid_by_labels=_translated(statement.PAID_BY_LABELS, language),
        can=_can,
        has_receipt=orders.has_receipt,
        # What a self-refreshing region listens for: `hx-trigger="{{ region_trigger.balance }}"`.
        region_trigger=REGION_TRIGGERS,
        shared_events=" ".join(SHARED_BETWEEN_TABS),
        # Whose messages are support's, in a thread.
        staff_roles=policy.STAFF,
        # The file field's limits (services/attachments.py), for the browser's own check.
        attachment_limits={
            "file": attachments.MAX_FILE_BYTES,
            "message": attachments.MAX_MESSAGE_BYTES,
            "count": attachments.MAX_FILES,
        },
    )
    return env


_format_nok = functools.lru_cache(maxsize=4096)(format_nok)
_format_phone = functools.lru_cache(maxsize=4096)(format_phone)


def create_template_engine(*, auto_reload: bool = True) -> JinjaTemplateEngine:
    """Templates are compiled once per language and cached; with `auto_reload` (development)
    Jinja also checks each template's file on every render, so edits show without a restart."""
    return _LanguageEngine(
        {language: _environment(language, auto_reload) for language in i18n.LANGUAGES}
    )


@functools.cache
def mail_environment(language: str) -> Environment:
    """The mails' templates (frontend/templates/mail/) in `language`, with the pages' filters;
    the HTML part escaped, the text part as it is."""
    env = _environment(language, auto_reload=False, mail=True)
    env.globals["_"] = _translate_for_mail
    return env


@pass_eval_context
def _translate_for_mail(eval_context: EvalContext, message: str, **variables: Any) -> str:
    """`_(…)` in mails: escaped in the HTML part, as it is in the text part."""
    if eval_context.autoescape:
        return _translate(message, **variables)
    translated = i18n.gettext(message)
    return translated % variables if variables else translated


def wants_fragment(request: Request) -> bool:
    """An htmx request, other than restoring history (which needs the whole page). The headers
    are read as they are: Litestar's HTMXDetails parses them anew at every look."""
    headers = request.headers
    return (
        headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"
    )


def asks_for_region(request: Request, region: str) -> bool:
    """An htmx request for one region of the page (not boosted navigation): HX-Target is
    "queue-rows" in htmx 2, "div#queue-rows" in htmx 4."""
    if not wants_fragment(request):
        return False
    target = request.headers.get("hx-target") or ""
    return target.rsplit("#", 1)[-1] == region


def page(request: Request, template_name: str, status_code: int = 200, **context: Any) -> Template:
    """A whole page, or only its main region when htmx asks (boosted navigation)."""
    return Template(
        template_name,
        context={**context, "partial": wants_fragment(request)},
        status_code=status_code,
        media_type=MediaType.HTML,  # else Litestar guesses it from the name on every response
    )


def form_response(
    request: Request, page_name: str, fragment_name: str, status_code: int, **context: Any
) -> Template:
    """A form's own region for htmx, the whole page for a plain post (JavaScript off)."""
    if wants_fragment(request):
        return Template(
            fragment_name, context=context, status_code=status_code, media_type=MediaType.HTML
        )
    return page(request, page_name, status_code=status_code, **context)


def redirect(request: Request, url: str, *events: str) -> Response:
    """To `url` after an action; `events` (backend/web/events.py) tell the page what changed."""
    if wants_fragment(request):
        response = ClientRedirect(url)
        response.status_code = 200  # else a POST handler's default, 201
        return announce(response, *events)
    return Redirect(url, status_code=303)
