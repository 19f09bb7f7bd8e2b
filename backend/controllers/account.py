"""What every signed-in user (customer or staff) keeps for themselves: their password and their
e-mail address (confirmed from the new address, by a link that works signed in or not)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import FromPath
from litestar.response import Template

from backend.controllers.auth import client_ip
from backend.services import email_change, users
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_form
from backend.web.guards import allowed
from backend.web.sessions import sign_in
from backend.web.templating import form_response, page

# Each request mails the address typed: someone changing their address, not a script using the
# portal to mail strangers. Per client address, with its own counter.
EMAIL_CHANGE_RATE_LIMIT = RateLimitConfig(rate_limit=("hour", 10), store="rate_limit_email_change")

PASSWORD_PAGE = "account/password.html"
PASSWORD_FORM_REGION = "account/_password_form.html"
EMAIL_PAGE = "account/email.html"
EMAIL_FORM_REGION = "account/_email_form.html"
CONFIRM_PAGE = "account/email_confirm.html"
CONFIRM_FORM_REGION = "account/_email_confirm_form.html"


async def _password_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    # Nothing typed comes back: every field is a password.
    return {"errors": errors, "changed": False}


async def _email_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    # The address typed comes back, never the password.
    return {"form": {"new_email": values.get("new_email", "")}, "errors": errors, "sent_to": ""}


async def _confirm_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {"token": request.path_params.get("token", ""), "errors": errors, "new_email": ""}


PASSWORD_FORM = FormView(PASSWORD_PAGE, PASSWORD_FORM_REGION, _password_context)
EMAIL_FORM = FormView(EMAIL_PAGE, EMAIL_FORM_REGION, _email_context)
CONFIRM_FORM = FormView(CONFIRM_PAGE, CONFIRM_FORM_REGION, _confirm_context)


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

    @get("/email", name="email")
    async def show_email(self, request: Request) -> Template:
        return page(request, EMAIL_PAGE, form={}, errors={}, sent_to="")

    @post(
        "/email",
        name="email_change",
        operation_class=form_operation(email_change.EmailChange),
        middleware=[EMAIL_CHANGE_RATE_LIMIT.middleware],
        opt={"form": EMAIL_FORM},
    )
    async def change_email(self, request: Request) -> Template:
        form = await read_form(request, email_change.EmailChange)
        await email_change.ask_for_change(request.user, form, ip=client_ip(request))
        return form_response(
            request, EMAIL_PAGE, EMAIL_FORM_REGION, 200, form={}, errors={}, sent_to=form.new_email
        )


class EmailConfirmationController(Controller):
    """The link mailed to the new address: it shows what it will do, and a button does it (a
    mail program's link checker that opens it changes nothing)."""

    path = "/account/email/confirm"

    @get("/{token:str}", name="email_confirm")
    async def show_confirm(self, request: Request, token: FromPath[str]) -> Template:
        pending = await email_change.pending_link(token)
        return page(
            request,
            CONFIRM_PAGE,
            status_code=200 if pending else 410,
            token=token,
            new_email=pending[1] if pending else "",
            errors={} if pending else {"form": email_change.LINK_NOT_VALID},
        )

    @post(
        "/{token:str}",
        name="email_confirm_submit",
        operation_class=form_operation(email_change.EmailConfirmation),
        opt={"form": CONFIRM_FORM},
    )
    async def confirm(self, request: Request, token: FromPath[str]) -> Template:
        await read_form(request, email_change.EmailConfirmation)
        signed_in = request.scope.get("user")
        user = await email_change.confirm_change(token, signed_in)
        if signed_in is not None:
            # Every session of the user has ended; this browser goes on, under a fresh id.
            sign_in(request, user)
        return form_response(
            request,
            CONFIRM_PAGE,
            CONFIRM_FORM_REGION,
            200,
            token=token,
            new_email=user.email,
            confirmed=True,
            errors={},
        )
