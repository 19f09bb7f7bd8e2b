"""A company registers itself and its superuser."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.response import Response, Template

from backend.services import companies
from backend.services.errors import ValidationFailed
from backend.web.forms import read_form
from backend.web.sessions import sign_in
from backend.web.templating import form_response, page, redirect

# Registrations per client address: enough for an office registering its companies, not for a
# script filling the database. Its own store name, so no other limit shares the counter.
REGISTRATION_RATE_LIMIT = RateLimitConfig(rate_limit=("hour", 20), store="rate_limit_register")


class RegistrationController(Controller):
    path = "/register"

    @get(name="register")
    async def show_form(self, request: Request) -> Template:
        return page(request, "register.html", form={}, errors={})

    @post(name="register_submit", middleware=[REGISTRATION_RATE_LIMIT.middleware])
    async def register(self, request: Request) -> Response | Template:
        form: dict[str, str] = {}
        try:
            form = await read_form(request, companies.REGISTRATION_FIELDS)
            user = await companies.register_company(form)
        except ValidationFailed as failed:
            form = failed.values or form
            # Keep what was typed, never the passwords.
            kept = {k: v for k, v in form.items() if not k.startswith("password")}
            return form_response(
                request,
                "register.html",
                "_register_form.html",
                422,
                form=kept,
                errors=failed.errors,
            )
        sign_in(request, user)
        return redirect(request, "/portal")
