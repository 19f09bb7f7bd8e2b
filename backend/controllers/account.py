"""What every signed-in user (customer or staff) keeps for themselves: their password."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Template

from backend.controllers.auth import client_ip
from backend.services import users
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_form
from backend.web.guards import allowed
from backend.web.sessions import sign_in
from backend.web.templating import form_response, page

PASSWORD_PAGE = "account/password.html"
PASSWORD_FORM_REGION = "account/_password_form.html"


async def _password_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    # Nothing typed comes back: every field is a password.
    return {"errors": errors, "changed": False}


PASSWORD_FORM = FormView(PASSWORD_PAGE, PASSWORD_FORM_REGION, _password_context)


class AccountController(Controller):
    path = "/account"
    guards = [allowed("manage_own_account")]  # noqa: RUF012

    @get("/password", name="password")
    async def show_password(self, request: Request) -> Template:
        return page(request, PASSWORD_PAGE, errors={}, changed=False)

    @post(
        "/password",
        name="password_change",
        operation_class=form_operation(users.PasswordChange),
        opt={"form": PASSWORD_FORM},
    )
    async def change_password(self, request: Request) -> Template:
        form = await read_form(request, users.PasswordChange)
        await users.change_password(request.user, form, ip=client_ip(request))
        # Every session of the user has ended; this browser goes on, under a fresh id.
        sign_in(request, request.user)
        return form_response(
            request, PASSWORD_PAGE, PASSWORD_FORM_REGION, 200, errors={}, changed=True
        )
