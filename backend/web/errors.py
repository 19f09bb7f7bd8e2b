"""Domain errors, handled once for every route: NotFound → 404, NotAllowed → 403,
ValidationFailed → 422 and PaymentsError → 503, the last two with the posted form again.

Under /api/ every failure is JSON (`ApiError`), never a page or a redirect: 401 with
`WWW-Authenticate: Bearer` for a request that names no one (or a token that is no longer
good), 400 with each parameter's message for a query that does not read.

A route whose form can come back names it: `@post(..., opt={"form": FormView(...)})` (or a
function of the posted values choosing one, when one route serves several forms). The form
is shown again with the input kept and each field's message: its own region for htmx, the
whole page for a plain post.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Response, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from backend.i18n import N_, gettext
from backend.services.errors import NotAllowed, NotFound, ValidationFailed
from backend.services.payments import PaymentsError
from backend.services.users import TooManyAttempts
from backend.web.forms import FORM_VALUES
from backend.web.templating import form_response, redirect, wants_fragment

logger = logging.getLogger("portal")

TOO_MANY_ATTEMPTS = N_("For mange mislykkede innlogginger. Vent noen minutter før du prøver igjen.")
PAYMENTS_DOWN = N_("Betalingstjenesten svarer ikke akkurat nå. Prøv igjen om litt.")

API_MESSAGES = {
    400: N_("Ugyldige parametre."),
    401: N_("Oppgi en gyldig API-nøkkel (Authorization: Bearer …) eller logg inn."),
    403: N_("API-et er for kundens egne brukere."),
    404: N_("Finnes ikke."),
    405: N_("Metoden støttes ikke her."),
    429: N_("For mange forespørsler. Vent litt og prøv igjen."),
}
API_FAILED = N_("Noe gikk galt. Oppgi forespørselens id hvis du kontakter oss.")


class ApiError(msgspec.Struct):
    """What a failed request under /api/ answers."""

    error: int  # the HTTP status
    message: str
    request_id: str
    # A parameter's name → what is wrong with it (400).
    errors: dict[str, str] = msgspec.field(default_factory=dict)


def _json_error(request: Request, status: int, errors: dict[str, str], request_id: str) -> Response:
    message = API_MESSAGES.get(status) or (API_FAILED if status >= 500 else "")
    headers = {}
    if status == 401:
        # RFC 6750: a token that was sent but is not good says so.
        sent = "authorization" in request.headers
        headers["www-authenticate"] = 'Bearer error="invalid_token"' if sent else "Bearer"
    body = ApiError(
        error=status,
        message=gettext(message) if message else "",
        request_id=request_id,
        errors={name: gettext(text) for name, text in errors.items()},
    )
    return Response(body, status_code=status, headers=headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


# (request, the posted values, the messages by field) → the template's context.
FormContext = Callable[[Request, dict[str, Any], dict[str, str]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class FormView:
    page: str
    fragment: str
    context: FormContext


def error_page(request: Request, exc: Exception) -> Response:
    """Every other failure: a calm page (JSON under /api) with a request id; a visitor asking
    for a page that needs a sign-in is sent to sign in first."""
    if isinstance(exc, NotAuthorizedException) and request.method == "GET" and not _is_api(request):
        return redirect(request, f"/login?next={quote(request.url.path)}")
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
    else:
        status, detail = HTTP_500_INTERNAL_SERVER_ERROR, ""
    request_id = secrets.token_hex(6)
    if status >= 500:
        logger.error(
            "request %s failed: %s %s", request_id, request.method, request.url.path, exc_info=exc
        )
    if _is_api(request):
        return _json_error(request, status, {}, request_id)
    if request.url.path.startswith("/healthz"):
        return Response({"error": status, "request_id": request_id}, status_code=status)
    return Template(
        "errors/error.html",
        context={
            "status": status,
            "detail": detail,
            "request_id": request_id,
            "partial": wants_fragment(request),
        },
        status_code=status,
    )


def _form_view(request: Request, values: dict[str, Any]) -> FormView | None:
    view = request.route_handler.opt.get("form")
    if view is None or isinstance(view, FormView):
        return view
    return view(values)


class FormAgain(Response):
    """The form of `view` again; its context is read when the response is sent (exception
    handlers are synchronous, the context needs the database)."""

    def __init__(
        self, view: FormView, values: dict[str, Any], errors: dict[str, str], status_code: int
    ) -> None:
        super().__init__(content=b"", status_code=status_code)
        self.view, self.values, self.errors = view, values, errors

    def to_asgi_response(self, app: Any, request: Request, **kwargs: Any) -> Any:  # type: ignore[override]
        async def send_form(scope: Any, receive: Any, send: Any) -> None:
            context = await self.view.context(request, self.values, self.errors)
            template = form_response(
                request, self.view.page, self.view.fragment, self.status_code, **context
            )
            await template.to_asgi_response(None, request, **kwargs)(scope, receive, send)

        return send_form


def _posted(request: Request) -> dict[str, Any]:
    return dict(request.state.get(FORM_VALUES) or {})


def _again(request: Request, errors: dict[str, str], values: dict, status: int) -> Response:
    view = _form_view(request, values)
    if view is None:
        return error_page(
            request, HTTPException(status_code=status, detail=" ".join(errors.values()))
        )
    return FormAgain(view, values, errors, status)


def validation_failed(request: Request, failed: ValidationFailed) -> Response:
    if _is_api(request):
        return _json_error(request, 400, failed.errors, secrets.token_hex(6))
    values = failed.values if failed.values is not None else _posted(request)
    return _again(request, failed.errors, values, 422)


def payments_failed(request: Request, failure: PaymentsError) -> Response:
    logger.warning("payments unavailable on %s: %s", request.url.path, failure)
    return _again(request, {"form": PAYMENTS_DOWN}, _posted(request), 503)


def too_many_attempts(request: Request, refused: TooManyAttempts) -> Response:
    return _again(request, {"form": refused.message or TOO_MANY_ATTEMPTS}, _posted(request), 429)


def not_found(request: Request, _: NotFound) -> Response:
    return error_page(request, HTTPException(status_code=404, detail="Not Found"))


def not_allowed(request: Request, _: NotAllowed) -> Response:
    return error_page(request, HTTPException(status_code=403, detail="Forbidden"))


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Response]] = {
    Exception: error_page,
    NotFound: not_found,
    NotAllowed: not_allowed,
    ValidationFailed: validation_failed,
    PaymentsError: payments_failed,
    TooManyAttempts: too_many_attempts,
}
