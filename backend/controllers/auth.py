"""Sign in and sign out."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.response import Response, Template

from backend.controllers.public import remember_language, safe_next
from backend.i18n import N_
from backend.services import policy, users, validation
from backend.services.errors import ValidationFailed
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_form
from backend.web.sessions import sign_in, sign_out
from backend.web.templating import page, redirect

WRONG_CREDENTIALS = N_("Feil e-postadresse eller passord.")
TOO_MANY_ATTEMPTS = N_("For mange mislykkede innlogginger. Vent noen minutter før du prøver igjen.")


def client_ip(request: Request) -> str:
    # The socket's peer, or the address a configured proxy forwarded (FORWARDED_ALLOW_IPS,
    # see `portal serve`): never a header a client wrote itself.
    return request.client.host if request.client else "unknown"


class LoginForm(msgspec.Struct):
    # No rules on what is typed beyond its length: a wrong address is a wrong sign-in.
    email: validation.field(str, max_length=320) = ""
    password: validation.field(str, max_length=1024) = ""
    next: validation.field(str, max_length=2000) = ""


async def _login_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    # One message for the whole form (wrong address or password, an unknown field, control
    # characters): which field was wrong is not for a stranger to learn. Never the password.
    kept = {"email": values.get("email", ""), "next": values.get("next", "")}
    return {"form": kept, "errors": {"form": next(iter(errors.values()))}}


LOGIN_FORM = FormView("login.html", "_login_form.html", _login_context)


class AuthController(Controller):
    @get("/login", name="login")
    async def show_login(self, request: Request) -> Template:
        return page(
            request, "login.html", form={"next": request.query_params.get("next", "")}, errors={}
        )

    @post(
        "/login",
        name="login_submit",
        operation_class=form_operation(LoginForm),
        opt={"form": LOGIN_FORM},
    )
    async def login(self, request: Request) -> Response:
        form = await read_form(request, LoginForm)
        user = await users.sign_in(form.email, form.password, ip=client_ip(request))
        if user is None:
            raise ValidationFailed({"form": WRONG_CREDENTIALS})
        sign_in(request, user)
        landing = "/staff" if policy.can(user, "work_queue") else "/portal"
        response = redirect(request, safe_next(form.next, landing))
        # The user's own language, on this browser too once they sign out.
        remember_language(response, users.language_of(user))
        return response

    @post("/logout", name="logout")
    async def logout(self, request: Request) -> Response:
        sign_out(request)
        return redirect(request, "/")
