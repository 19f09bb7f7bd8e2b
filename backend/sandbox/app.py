"""The sandbox as a Litestar app: Stripe's v1 HTTP API (the part the portal uses) and the
hosted checkout page.

Routes, relative to where the app is mounted (e.g. /sandbox/stripe):

    POST /v1/customers                       GET /v1/customers/{id}
    POST /v1/checkout/sessions               GET /v1/checkout/sessions/{id}
    GET  /v1/checkout/sessions/{id}/line_items
    POST /v1/checkout/sessions/{id}/expire
    POST /v1/refunds                         GET /v1/refunds/{id}
    GET  /v1/payment_intents/{id}            GET /v1/charges/{id}
    GET  /v1/events                          GET /v1/events/{id}
    POST /v1/test_helpers/checkout/sessions/{id}/complete   (outcome=paid|declined|…)
    POST /v1/test_helpers/events/{id}/resend
    GET/POST /checkout/{id}                  the hosted page («Testmodus»)

API calls need the sandbox's own key (`Authorization: Bearer <secret_key>`, as the SDK sends
it); any other key gets Stripe's 401. Sessions may return browsers only to the allowed
origins (the portal's own). Parameters are checked against the installed SDK's typed params
(see params.py); a POST with an `Idempotency-Key` seen before replays the stored answer.
State is in memory (see state.py).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import stripe.params as sp
import stripe.params.checkout as spc
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.params import FromPath

from .pages import checkout_page, not_found_page
from .params import ListOf, Literal_, ParamError, Scalar, parse_form, validate, validate_custom
from .state import (
    API_VERSION,
    IDEMPOTENCY_TTL,
    OUTCOMES,
    RequestInfo,
    Sandbox,
    StoredResponse,
    StripeError,
    new_id,
)

logger = logging.getLogger(__name__)

Validator = Callable[[dict[str, Any]], dict[str, Any]]
Action = Callable[[dict[str, Any], RequestInfo], dict[str, Any]]

DECLINED = "Kortet ble avvist. Prøv igjen eller avbryt."
PAGE_OUTCOMES = {*OUTCOMES, "cancel"}
_EXPAND_ONLY = {"expand": ListOf(Scalar("str"))}
_COMPLETE = {"outcome": Literal_(OUTCOMES), **_EXPAND_ONLY}


def sdk(cls: type, *required: str) -> Validator:
    """Validate against one of the SDK's params TypedDicts."""
    return lambda raw: validate(cls, raw, required=required)


def custom(fields: dict[str, Any], *required: str) -> Validator:
    """Validate a sandbox-only endpoint's parameters (no SDK type exists for them)."""
    return lambda raw: validate_custom(fields, raw, required=required)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2, ensure_ascii=False, default=str).encode()


def _path(request: Request) -> str:
    return "/" + request.scope["path"].strip("/")


def _api_key(header: str) -> str:
    """The key from "Bearer <key>" (the SDK) or "Basic base64(<key>:)" (curl -u <key>:)."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def _mask(key: str) -> str:
    return key[:8] + "*" * 4 + key[-4:] if len(key) > 12 else "*" * len(key)


class Api:
    """Runs one API call: auth, parameters, idempotency, the action, expand, the response."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, request: Request, check: Validator, action: Action) -> Response:
        method = request.method.upper()
        key = request.headers.get("idempotency-key") or None
        info = RequestInfo(id=new_id("req", 14), idempotency_key=key)
        headers = {
            "Request-Id": info.id,
            "Stripe-Version": request.headers.get("stripe-version") or API_VERSION,
            "Cache-Control": "no-cache, no-store",
        }
        if key:
            headers["Idempotency-Key"] = key
        try:
            self._authenticate(request)
            raw = parse_form(request.scope.get("query_string", b"").decode("latin-1"))
            if method == "POST":
                raw.update(parse_form((await request.body()).decode("utf-8", "replace")))
            params = check(raw)
        except ParamError as error:
            return self._error(
                StripeError(error.message, code=error.code, param=error.param), headers
            )
        except StripeError as error:
            return self._error(error, headers)

        path = _path(request)
        if method == "POST" and key:
            stored = self._stored(key)
            if stored is not None:
                return self._replay(stored, key, method, path, raw, headers)
        try:
            result = action(params, info)
            expand = params.get("expand") or []
            if expand:
                self.sandbox.expand(result, expand)
            status, body = 200, _json(result)
        except StripeError as error:
            status, body = error.status, _json(error.body())
        if method == "POST" and key:
            self.sandbox.idempotency[key] = StoredResponse(
                method=method,
                path=path,
                params=raw,
                status=status,
                body=body,
                request_id=info.id,
                at=self.sandbox.clock(),
            )
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    def _authenticate(self, request: Request) -> None:
        """Only the key the sandbox was created with opens it, as only an account's own key
        opens Stripe: the API lists every customer's events and refunds any payment."""
        header = request.headers.get("authorization", "")
        if not header:
            raise StripeError(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
                status=401,
            )
        api_key = _api_key(header)
        if not hmac.compare_digest(api_key.encode(), self.sandbox.secret_key.encode()):
            raise StripeError(
                f"Invalid API Key provided: {_mask(api_key or header)}",
                status=401,
                code="invalid_api_key",
            )

    def _stored(self, key: str) -> StoredResponse | None:
        stored = self.sandbox.idempotency.get(key)
        if stored is not None and self.sandbox.clock() - stored.at > IDEMPOTENCY_TTL:
            del self.sandbox.idempotency[key]
            return None
        return stored

    def _replay(
        self,
        stored: StoredResponse,
        key: str,
        method: str,
        path: str,
        raw: dict[str, Any],
        headers: dict[str, str],
    ) -> Response:
        if (stored.method, stored.path) != (method, path):
            return self._error(
                StripeError(
                    "Keys for idempotent requests can only be used for the same endpoint they "
                    f"were first used for ('{stored.method} {stored.path}' vs '{method} {path}'). "
                    f"Try using a key other than '{key}' if you meant to execute a different "
                    "request.",
                    type="idempotency_error",
                ),
                headers,
            )
        if stored.params != raw:
            return self._error(
                StripeError(
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    type="idempotency_error",
                ),
                headers,
            )
        replay_headers = {
            **headers,
            "Idempotent-Replayed": "true",
            "Original-Request": stored.request_id,
        }
        return Response(
            stored.body,
            status_code=stored.status,
            media_type="application/json",
            headers=replay_headers,
        )

    @staticmethod
    def _error(error: StripeError, headers: dict[str, str]) -> Response:
        return Response(
            _json(error.body()),
            status_code=error.status,
            media_type="application/json",
            headers=headers,
        )


def _html(content: str, status: int = 200) -> Response:
    return Response(
        content,
        status_code=status,
        media_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


def _redirect(url: str) -> Response:
    return Response(b"", status_code=303, headers={"Location": url, "Cache-Control": "no-store"})


def _unrecognized(request: Request, exc: Exception) -> Response:
    path = _path(request)
    if not path.startswith("/v1/"):
        return _html(not_found_page(), 404)
    error = StripeError(
        f"Unrecognized request URL ({request.method.upper()}: {path}). The payments sandbox "
        "implements only the part of Stripe's API the portal uses.",
        status=404,
    )
    return Response(_json(error.body()), status_code=404, media_type="application/json")


def _http_error(request: Request, exc: HTTPException) -> Response:
    error = StripeError(str(exc.detail), status=exc.status_code)
    return Response(_json(error.body()), status_code=exc.status_code, media_type="application/json")


def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("payments sandbox failed on %s %s", request.method, _path(request))
    error = StripeError(f"Sandbox error: {type(exc).__name__}: {exc}", status=500, type="api_error")
    return Response(_json(error.body()), status_code=500, media_type="application/json")


def sandbox_app(sandbox: Sandbox) -> Litestar:
    """The Litestar app serving `sandbox` (available as `app.state.sandbox`)."""
    api = Api(sandbox)

    @post("/v1/customers", status_code=200)
    async def create_customer(request: Request) -> Response:
        return await api(request, sdk(sp.CustomerCreateParams), sandbox.create_customer)

    @get("/v1/customers/{customer_id:str}")
    async def retrieve_customer(request: Request, customer_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(sp.CustomerRetrieveParams),
            lambda params, info: sandbox.get_customer(customer_id),
        )

    @post("/v1/checkout/sessions", status_code=200)
    async def create_session(request: Request) -> Response:
        return await api(
            request,
            sdk(spc.SessionCreateParams, "mode", "line_items"),
            sandbox.create_session,
        )

    @get("/v1/checkout/sessions/{session_id:str}")
    async def retrieve_session(request: Request, session_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(spc.SessionRetrieveParams),
            lambda params, info: sandbox.get_session(session_id),
        )

    @get("/v1/checkout/sessions/{session_id:str}/line_items")
    async def list_line_items(request: Request, session_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(spc.SessionLineItemListParams),
            lambda params, info: sandbox.list_line_items(session_id, params),
        )

    @post("/v1/checkout/sessions/{session_id:str}/expire", status_code=200)
    async def expire_session(request: Request, session_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(spc.SessionExpireParams),
            lambda params, info: sandbox.expire_session(session_id, info),
        )

    @post("/v1/refunds", status_code=200)
    async def create_refund(request: Request) -> Response:
        return await api(request, sdk(sp.RefundCreateParams), sandbox.create_refund)

    @get("/v1/refunds/{refund_id:str}")
    async def retrieve_refund(request: Request, refund_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(sp.RefundRetrieveParams),
            lambda params, info: sandbox.get_refund(refund_id),
        )

    @get("/v1/payment_intents/{intent_id:str}")
    async def retrieve_payment_intent(request: Request, intent_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(sp.PaymentIntentRetrieveParams),
            lambda params, info: sandbox.get_payment_intent(intent_id),
        )

    @get("/v1/charges/{charge_id:str}")
    async def retrieve_charge(request: Request, charge_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(sp.ChargeRetrieveParams),
            lambda params, info: sandbox.get_charge(charge_id),
        )

    @get("/v1/events")
    async def list_events(request: Request) -> Response:
        return await api(
            request, sdk(sp.EventListParams), lambda params, info: sandbox.list_events(params)
        )

    @get("/v1/events/{event_id:str}")
    async def retrieve_event(request: Request, event_id: FromPath[str]) -> Response:
        return await api(
            request,
            sdk(sp.EventRetrieveParams),
            lambda params, info: sandbox.get_event(event_id),
        )

    @post("/v1/test_helpers/checkout/sessions/{session_id:str}/complete", status_code=200)
    async def complete_session(request: Request, session_id: FromPath[str]) -> Response:
        return await api(
            request,
            custom(_COMPLETE, "outcome"),
            lambda params, info: sandbox.complete_session(session_id, params["outcome"], info),
        )

    @post("/v1/test_helpers/events/{event_id:str}/resend", status_code=200)
    async def resend_event(request: Request, event_id: FromPath[str]) -> Response:
        return await api(
            request, custom(_EXPAND_ONLY), lambda params, info: sandbox.resend_event(event_id)
        )

    def render(session_id: str, *, message: str | None = None, status: int = 200) -> Response:
        try:
            record = sandbox.session_record(session_id)
        except StripeError:
            return _html(not_found_page(), 404)
        intent = sandbox.payment_intents.get(record.obj["payment_intent"] or "")
        page = checkout_page(
            record,
            intent,
            message=message,
            error=status >= 400,
            may_link=sandbox.allows_redirect,
        )
        return _html(page, status)

    @get("/checkout/{session_id:str}")
    async def hosted_page(session_id: FromPath[str]) -> Response:
        return render(session_id)

    @post("/checkout/{session_id:str}", status_code=200)
    async def hosted_page_action(request: Request, session_id: FromPath[str]) -> Response:
        try:
            form = parse_form((await request.body()).decode("utf-8", "replace"))
        except ParamError:
            form = {}
        outcome = form.get("outcome")
        try:
            record = sandbox.session_record(session_id)
        except StripeError:
            return _html(not_found_page(), 404)
        session = record.obj
        if outcome not in PAGE_OUTCOMES:
            return render(session_id, message="Ukjent valg. Prøv igjen.", status=400)
        if outcome == "cancel":
            if session["status"] == "open" and sandbox.allows_redirect(session["cancel_url"]):
                return _redirect(session["cancel_url"])
            return render(session_id, message="Betalingen kan ikke avbrytes nå.", status=409)
        try:
            sandbox.complete_session(session_id, outcome, None)
        except StripeError:
            return render(
                session_id, message="Dette valget passer ikke lenger for betalingen.", status=409
            )
        success_url = (session["success_url"] or "").replace("{CHECKOUT_SESSION_ID}", session_id)
        # Checked at creation too; checked again because this sends a browser away.
        if outcome in ("paid", "async_pending") and sandbox.allows_redirect(success_url):
            return _redirect(success_url)
        messages = {
            "paid": "Betalingen er gjennomført.",
            "async_pending": "Betalingen er registrert og venter på bekreftelse.",
            "declined": DECLINED,
            "async_succeeded": "Den forsinkede betalingen er fullført.",
            "async_failed": "Den forsinkede betalingen ble avvist.",
        }
        return render(
            session_id, message=messages[outcome], status=402 if outcome == "declined" else 200
        )

    return Litestar(
        route_handlers=[
            create_customer,
            retrieve_customer,
            create_session,
            retrieve_session,
            list_line_items,
            expire_session,
            create_refund,
            retrieve_refund,
            retrieve_payment_intent,
            retrieve_charge,
            list_events,
            retrieve_event,
            complete_session,
            resend_event,
            hosted_page,
            hosted_page_action,
        ],
        exception_handlers={
            NotFoundException: _unrecognized,
            MethodNotAllowedException: _unrecognized,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        on_shutdown=[sandbox.aclose],
        state=State({"sandbox": sandbox}),
        openapi_config=None,
        logging_config=None,
    )


def create_sandbox_app(
    *,
    webhook_url: str,
    webhook_secret: str,
    public_url: str,
    secret_key: str,
    allowed_origins: Iterable[str],
) -> Litestar:
    """A fresh sandbox (empty, in memory) as a Litestar app.

    `public_url` is the absolute address the app is mounted at, e.g.
    "http://127.0.0.1:8000/sandbox/stripe"; sessions' `url` is f"{public_url}/checkout/{id}".
    Events are POSTed, signed with `webhook_secret`, to `webhook_url` (empty: not sent).
    `secret_key` (sk_test_…) is the only API key it accepts; `allowed_origins` are the only
    origins a session's success_url and cancel_url may point to (e.g. the portal's base URL).
    Tuning (webhook retry schedule, clock): build a `Sandbox` yourself and call `sandbox_app`,
    or change `app.state.sandbox.webhooks.retry_delays`.
    """
    return sandbox_app(
        Sandbox(
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            public_url=public_url,
            secret_key=secret_key,
            allowed_origins=allowed_origins,
        )
    )
