"""A company registers itself and its superuser."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.response import Response, Template

from backend.services import brreg, companies
from backend.web.errors import FormView
from backend.web.forms import form_operation, query_operation, read_form, read_query
from backend.web.sessions import sign_in
from backend.web.templating import asks_for_region, page, redirect

# Registrations per client address: enough for an office registering its companies, not for a
# script filling the database. Its own store name, so no other limit shares the counter.
REGISTRATION_RATE_LIMIT = RateLimitConfig(rate_limit=("hour", 20), store="rate_limit_register")
# Lookups in Enhetsregisteret per client address: a person trying a few numbers, not a script
# using the portal as its free proxy to the register.
LOOKUP_RATE_LIMIT = RateLimitConfig(rate_limit=("minute", 20), store="rate_limit_register_lookup")


def _register(request: Request) -> brreg.Enhetsregisteret:
    return request.app.state.brreg


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

    @get(
        "/company",
        name="register_lookup",
        operation_class=query_operation(companies.CompanyLookupQuery),
        middleware=[LOOKUP_RATE_LIMIT.middleware],
    )
    async def look_up_company(self, request: Request) -> Template:
        """The form's company fields, filled from Enhetsregisteret (htmx, when the org.nr.
        changes); the whole form so filled without JavaScript."""
        query = read_query(request, companies.CompanyLookupQuery)
        lookup = await companies.look_up_company(_register(request), query)
        if asks_for_region(request, "register-org"):
            return Template(
                "_register_lookup.html",
                context={"form": lookup.form, "errors": lookup.errors, "lookup": lookup},
                media_type=MediaType.HTML,
            )
        return page(request, "register.html", form=lookup.form, errors=lookup.errors, lookup=lookup)

    @post(
        name="register_submit",
        operation_class=form_operation(companies.Registration),
        middleware=[REGISTRATION_RATE_LIMIT.middleware],
        opt={"form": REGISTRATION_FORM},
    )
    async def register(self, request: Request) -> Response:
        form = await read_form(request, companies.Registration)
        user = await companies.register_company(form, _register(request))
        sign_in(request, user)
        return redirect(request, "/portal")
