"""The company's people: the members page (the superuser invites, removes and hands over), and
the invitation link an invitee follows, signed out."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import FromPath
from litestar.response import Response, Template

from backend.controllers.auth import client_ip
from backend.i18n import N_
from backend.services import members
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_values
from backend.web.guards import allowed
from backend.web.sessions import sign_in
from backend.web.templating import form_response, page, redirect

MEMBERS_PAGE = "portal/members.html"
MEMBERS_REGION = "portal/_members.html"
INVITATION_PAGE = "invitation.html"
INVITATION_FORM_REGION = "_invitation_form.html"

# Invitation mails per client address: a company inviting its people, not a script using the
# portal to mail strangers. Its own store name, so no other limit shares the counter.
INVITE_RATE_LIMIT = RateLimitConfig(rate_limit=("hour", 30), store="rate_limit_invite")
ACCEPT_RATE_LIMIT = RateLimitConfig(rate_limit=("hour", 20), store="rate_limit_invitation")

INVITED = N_("Invitasjonen er sendt til %(email)s.")
RESENT = N_("Invitasjonen er sendt på nytt. Den gamle lenken virker ikke lenger.")
WITHDRAWN = N_("Invitasjonen er trukket tilbake.")
REMOVED = N_("Medlemmet er fjernet og logget ut.")
HANDED_OVER = N_("%(name)s er nå superbruker. Du er medlem.")


async def _members_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {
        "people": await members.people_of(request.user),
        # Which form the messages belong to: the invitation form, or one member's hand-over.
        "failed": request.route_handler.name,
        "handover_to": request.path_params.get("user_id"),
        "form": {k: v for k, v in values.items() if k != "password"},
        "errors": errors,
        "notice": None,
    }


MEMBERS_FORM = FormView(MEMBERS_PAGE, MEMBERS_REGION, _members_context)


async def _answer(request: Request, notice: str, **variables: Any) -> Template:
    context = await _members_context(request, {}, {})
    context.update(notice=notice, notice_variables=variables, failed=None)
    return form_response(request, MEMBERS_PAGE, MEMBERS_REGION, 200, **context)


class MembersController(Controller):
    path = "/portal/company/members"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get(name="members")
    async def show_members(self, request: Request) -> Template:
        context = await _members_context(request, {}, {})
        return page(request, MEMBERS_PAGE, **context)

    @post(
        "/invitations",
        name="invitation_create",
        operation_class=form_operation(members.NewInvitation),
        guards=[allowed("manage_members")],
        middleware=[INVITE_RATE_LIMIT.middleware],
        opt={"form": MEMBERS_FORM},
    )
    async def invite(self, request: Request) -> Template:
        values = await read_values(request, members.NewInvitation)
        invitation = await members.invite(request.user, values)
        return await _answer(request, INVITED, email=invitation.email)

    @post(
        "/invitations/{invitation_id:int}/resend",
        name="invitation_resend",
        guards=[allowed("manage_members")],
        middleware=[INVITE_RATE_LIMIT.middleware],
    )
    async def resend(self, request: Request, invitation_id: FromPath[int]) -> Template:
        await members.resend(request.user, invitation_id)
        return await _answer(request, RESENT)

    @post(
        "/invitations/{invitation_id:int}/withdraw",
        name="invitation_withdraw",
        guards=[allowed("manage_members")],
    )
    async def withdraw(self, request: Request, invitation_id: FromPath[int]) -> Template:
        await members.withdraw(request.user, invitation_id)
        return await _answer(request, WITHDRAWN)

    @post("/{user_id:int}/remove", name="member_remove", guards=[allowed("manage_members")])
    async def remove(self, request: Request, user_id: FromPath[int]) -> Template:
        await members.remove_member(request.user, user_id)
        return await _answer(request, REMOVED)

    @post(
        "/{user_id:int}/superuser",
        name="superuser_handover",
        operation_class=form_operation(members.HandOver),
        guards=[allowed("manage_members")],
        opt={"form": MEMBERS_FORM},
    )
    async def hand_over(self, request: Request, user_id: FromPath[int]) -> Template:
        values = await read_values(request, members.HandOver)
        new = await members.hand_over(request.user, user_id, values, ip=client_ip(request))
        return await _answer(request, HANDED_OVER, name=new.name)


async def _invitation_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    kept = {k: v for k, v in values.items() if not k.startswith("password")}
    opened = await members.open_invitation(request.path_params["token"])
    return {"opened": opened, "token": request.path_params["token"], "form": kept, "errors": errors}


INVITATION_FORM = FormView(INVITATION_PAGE, INVITATION_FORM_REGION, _invitation_context)


class InvitationController(Controller):
    """The link in the invitation mail. Open to visitors: the token is the permission."""

    path = "/invitation"

    @get("/{token:str}", name="invitation")
    async def show_invitation(self, request: Request, token: FromPath[str]) -> Template:
        opened = await members.open_invitation(token)
        # A link that no longer works is a page that is not there, saying why.
        status = 200 if opened else 404
        return page(
            request, INVITATION_PAGE, status, opened=opened, token=token, form={}, errors={}
        )

    @post(
        "/{token:str}",
        name="invitation_accept",
        operation_class=form_operation(members.AcceptInvitation),
        middleware=[ACCEPT_RATE_LIMIT.middleware],
        opt={"form": INVITATION_FORM},
    )
    async def accept(self, request: Request, token: FromPath[str]) -> Response:
        values = await read_values(request, members.AcceptInvitation)
        member = await members.accept(token, values)
        sign_in(request, member)
        return redirect(request, "/portal")
