"""A company registers itself and its superuser."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.response import Response, Template

from backend.services import companies
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_form
from backend.web.sessions import sign_in
from backend.web.templating import page, redirect

# Registrations per client address: enough for an office registering its companies, not for a
# script filling the database. Its own store name, so no other limit shares the counter.
REGISTRATION_RATE_LIMIT = RateLimitConfig(rate_limit=("hour", 20), store="rate_limit_register")


async def _registration_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    # Keep what was typed, never the passwords.
    kept = {k: v for k, v in values.items() if not k.startswith("password")}
    return {"form": kept, "errors": errors}


REGISTRATION_FORM = FormView("register.html", "_register_form.html", _registration_context)


class RegistrationController(Controller):
    path = "/register"

    @get(name="register")
    async def show_form(self, request: Request) -> Template:
        return page(request, "register.html", form={}, errors={})

    @post(
        name="register_submit",
        operation_class=form_operation(companies.Registration),
        middleware=[REGISTRATION_RATE_LIMIT.middleware],
        opt={"form": REGISTRATION_FORM},
    )
    async def register(self, request: Request) -> Response:
        user = await companies.register_company(await read_form(request, companies.Registration))
        sign_in(request, user)
        return redirect(request, "/portal")
