"""Sign in and sign out."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.response import Response, Template

from backend.controllers.public import safe_next
from backend.i18n import N_
from backend.services import accounts
from backend.services.errors import ValidationFailed
from backend.web.forms import read_form
from backend.web.sessions import sign_in, sign_out
from backend.web.templating import form_response, page, redirect

WRONG_CREDENTIALS = N_("Feil e-postadresse eller passord.")
TOO_MANY_ATTEMPTS = N_("For mange mislykkede innlogginger. Vent noen minutter før du prøver igjen.")


def _client_ip(request: Request) -> str:
    # The socket's peer, or the address a configured proxy forwarded (FORWARDED_ALLOW_IPS,
    # see `portal serve`): never a header a client wrote itself.
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    @get("/login", name="login")
    async def show_login(self, request: Request) -> Template:
        return page(
            request, "login.html", form={"next": request.query_params.get("next", "")}, errors={}
        )

    @post("/login", name="login_submit")
    async def login(self, request: Request) -> Response | Template:
        def again(status: int, message: str) -> Template:
            kept = {"email": form.get("email", ""), "next": form.get("next", "")}
            return form_response(
                request,
                "login.html",
                "_login_form.html",
                status,
                form=kept,
                errors={"form": message},
            )

        form: dict[str, str] = {}
        try:
            form = await read_form(request, ("email", "password", "next"))
        except ValidationFailed as failed:
            # One message for the whole form: an unknown field, or control characters.
            return again(422, next(iter(failed.errors.values())))
        try:
            user = await accounts.sign_in(
                form.get("email", ""), form.get("password", ""), ip=_client_ip(request)
            )
        except accounts.TooManyAttempts:
            return again(429, TOO_MANY_ATTEMPTS)
        if user is None:
            return again(422, WRONG_CREDENTIALS)
        sign_in(request, user)
        landing = "/staff" if user.role in accounts.STAFF_ROLES else "/portal"
        return redirect(request, safe_next(form.get("next"), landing))

    @post("/logout", name="logout")
    async def logout(self, request: Request) -> Response:
        sign_out(request)
        return redirect(request, "/")
