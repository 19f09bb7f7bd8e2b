"""A forgotten password: "Glemt passord?" asks for a link by mail, the link sets a new one."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath
from litestar.response import Template

from backend.controllers.auth import client_ip
from backend.services import password_reset
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_form
from backend.web.templating import form_response, page

FORGOT_PAGE = "password/forgot.html"
FORGOT_FORM_REGION = "password/_forgot_form.html"
RESET_PAGE = "password/reset.html"
RESET_FORM_REGION = "password/_reset_form.html"


async def _forgot_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {"form": {"email": values.get("email", "")}, "errors": errors, "asked": False}


async def _reset_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    # Nothing typed comes back: both fields are passwords.
    return {"token": request.path_params.get("token", ""), "errors": errors, "done": False}


FORGOT_FORM = FormView(FORGOT_PAGE, FORGOT_FORM_REGION, _forgot_context)
RESET_FORM = FormView(RESET_PAGE, RESET_FORM_REGION, _reset_context)


class PasswordResetController(Controller):
    path = "/password"

    @get("/forgot", name="password_forgot")
    async def show_forgot(self, request: Request) -> Template:
        return page(request, FORGOT_PAGE, form={}, errors={}, asked=False)

    @post(
        "/forgot",
        name="password_forgot_submit",
        operation_class=form_operation(password_reset.ForgotPassword),
        opt={"form": FORGOT_FORM},
    )
    async def ask_for_link(self, request: Request) -> Template:
        form = await read_form(request, password_reset.ForgotPassword)
        await password_reset.ask_for_link(form, ip=client_ip(request))
        # The same answer for every address, sent before the address is looked up: the link
        # is made and queued after the response (password_reset's docstring).
        response = form_response(
            request, FORGOT_PAGE, FORGOT_FORM_REGION, 200, form={}, errors={}, asked=True
        )
        response.background = BackgroundTask(password_reset.send_link_after_answering, form.email)
        return response

    @get("/reset/{token:str}", name="password_reset")
    async def show_reset(self, request: Request, token: FromPath[str]) -> Template:
        valid = await password_reset.user_of_link(token) is not None
        return page(
            request,
            RESET_PAGE,
            status_code=200 if valid else 410,
            token=token,
            valid=valid,
            errors={} if valid else {"form": password_reset.LINK_NOT_VALID},
            done=False,
        )

    @post(
        "/reset/{token:str}",
        name="password_reset_submit",
        operation_class=form_operation(password_reset.PasswordReset),
        opt={"form": RESET_FORM},
    )
    async def reset(self, request: Request, token: FromPath[str]) -> Template:
        form = await read_form(request, password_reset.PasswordReset)
        await password_reset.reset_password(token, form)
        return form_response(
            request, RESET_PAGE, RESET_FORM_REGION, 200, token=token, errors={}, done=True
        )
