"""Update advisories (issue 13): staff publish, revise and withdraw them (/staff/advisories);
a company reads those for its covered products (/portal/advisories); anyone sees the titles
and verdicts (/advisories)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Response, Template

from backend.services import advisories, catalog, outbox
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_values
from backend.web.guards import allowed
from backend.web.templating import form_response, page, redirect

STAFF_URL = "/staff/advisories"


def _labels() -> dict[str, Any]:
    return {"verdict_labels": advisories.VERDICT_LABELS}


async def _new_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    return {
        **_labels(),
        "products": await catalog.all_offered_products(),
        "form": values,
        "errors": errors,
    }


async def _advisory_context(
    advisory_id: int, *, revise: dict | None = None, revise_errors: dict | None = None
) -> dict[str, Any]:
    advisory = await advisories.get_advisory(advisory_id)
    return {
        **_labels(),
        "advisory": advisory,
        "revisions": await advisories.history(advisory_id),
        "form": revise or advisories.revision_form_values(advisory),
        "errors": revise_errors or {},
    }


async def _revise_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    return await _advisory_context(
        request.path_params["advisory_id"], revise=values, revise_errors=errors
    )


async def _withdraw_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    return {
        **_labels(),
        "advisory": await advisories.get_advisory(request.path_params["advisory_id"]),
        "form": values,
        "errors": errors,
    }


NEW_FORM = FormView("staff/advisory_new.html", "staff/_advisory_new_form.html", _new_context)
REVISE_FORM = FormView("staff/advisory.html", "staff/_advisory_revise_form.html", _revise_context)
WITHDRAW_FORM = FormView(
    "staff/advisory_withdraw.html", "staff/_advisory_withdraw_form.html", _withdraw_context
)


class StaffAdvisoriesController(Controller):
    path = STAFF_URL
    guards = [allowed("publish_advisories")]  # noqa: RUF012

    @get(name="staff_advisories")
    async def list_advisories(self, request: Request) -> Template:
        return page(
            request,
            "staff/advisories.html",
            advisories=await advisories.all_advisories(request.user),
            **_labels(),
        )

    @get("/new", name="staff_advisory_new")
    async def new_advisory(self, request: Request, product: FromQuery[str] = "") -> Template:
        context = await _new_context(request, advisories.new_form_values(product[:40]), {})
        return page(request, "staff/advisory_new.html", **context)

    @post(
        name="staff_advisory_create",
        operation_class=form_operation(advisories.AdvisoryForm),
        opt={"form": NEW_FORM},
    )
    async def create_advisory(self, request: Request) -> Response:
        values = await read_values(request, advisories.AdvisoryForm)
        advisory = await advisories.publish(request.user, values)
        return redirect(request, f"{STAFF_URL}/{advisory.id}")

    @get("/{advisory_id:int}", name="staff_advisory")
    async def show_advisory(self, request: Request, advisory_id: FromPath[int]) -> Template:
        return page(request, "staff/advisory.html", **await _advisory_context(advisory_id))

    @post(
        "/{advisory_id:int}/revisions",
        name="staff_advisory_revise",
        operation_class=form_operation(advisories.RevisionForm),
        opt={"form": REVISE_FORM},
    )
    async def revise_advisory(self, request: Request, advisory_id: FromPath[int]) -> Response:
        await advisories.get_advisory(advisory_id)  # 404 before the form's 422
        values = await read_values(request, advisories.RevisionForm)
        await advisories.revise(request.user, advisory_id, values)
        return redirect(request, f"{STAFF_URL}/{advisory_id}")

    @get("/{advisory_id:int}/withdraw", name="staff_advisory_withdraw_confirm")
    async def confirm_withdraw(self, request: Request, advisory_id: FromPath[int]) -> Template:
        context = await _withdraw_context(request, {}, {})
        return page(request, "staff/advisory_withdraw.html", **context)

    @post(
        "/{advisory_id:int}/withdraw",
        name="staff_advisory_withdraw",
        operation_class=form_operation(advisories.WithdrawForm),
        opt={"form": WITHDRAW_FORM},
    )
    async def withdraw_advisory(self, request: Request, advisory_id: FromPath[int]) -> Response:
        await advisories.get_advisory(advisory_id)
        values = await read_values(request, advisories.WithdrawForm)
        await advisories.withdraw(request.user, advisory_id, values)
        return redirect(request, f"{STAFF_URL}/{advisory_id}")


async def _portal_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    follows = await advisories.follows(request.user)
    return {
        **_labels(),
        "lists": await advisories.company_lists(request.user),
        "follows": follows,
        "follow_form": values or {"products": sorted(follows.followed)},
        "follow_errors": errors,
        "saved": False,
        "has_feed": await advisories.has_feed(request.user),
        "feed_url": "",
    }


FOLLOW_FORM = FormView("portal/advisories.html", "portal/_advisory_follows.html", _portal_context)
FEED_FORM = FormView("portal/advisories.html", "portal/_advisory_feed.html", _portal_context)


class PortalAdvisoriesController(Controller):
    """A company's advisories: the details for the products its agreements cover."""

    path = "/portal/advisories"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get(name="portal_advisories")
    async def list_advisories(self, request: Request) -> Template:
        context = await _portal_context(request, {}, {})
        return page(request, "portal/advisories.html", **context)

    @post(
        "/follows",
        name="portal_advisory_follows",
        operation_class=form_operation(advisories.FollowForm),
        guards=[allowed("follow_advisories")],
        opt={"form": FOLLOW_FORM},
    )
    async def set_follows(self, request: Request) -> Template:
        await advisories.set_follows(
            request.user, await read_values(request, advisories.FollowForm)
        )
        context = await _portal_context(request, {}, {})
        context["saved"] = True
        return form_response(
            request, "portal/advisories.html", "portal/_advisory_follows.html", 200, **context
        )

    @post(
        "/feed",
        name="portal_advisory_feed",
        guards=[allowed("manage_api_tokens")],
        opt={"form": FEED_FORM},
    )
    async def new_feed(self, request: Request) -> Template:
        """A new private feed URL, replacing the old; answered with the page itself, not a
        redirect: the URL is shown this once."""
        token = await advisories.new_feed_token(request.user)
        context = await _portal_context(request, {}, {})
        base = outbox.letterhead().portal_url
        context.update(has_feed=True, feed_url=f"{base}/portal/advisories.atom?token={token}")
        return form_response(
            request, "portal/advisories.html", "portal/_advisory_feed.html", 200, **context
        )

    @get("/{advisory_id:int}", name="portal_advisory")
    async def show_advisory(self, request: Request, advisory_id: FromPath[int]) -> Template:
        shown = await advisories.company_advisory(request.user, advisory_id)
        revisions = await advisories.history(advisory_id) if shown.covered else []
        return page(
            request,
            "portal/advisory.html",
            advisory=shown.advisory,
            covered=shown.covered,
            revisions=revisions,
            ticket_url=advisories.ticket_link(shown.advisory),
            **_labels(),
        )


class PublicAdvisoriesController(Controller):
    """The titles and verdicts in force, for anyone (a reason to buy a plan)."""

    @get("/advisories", name="public_advisories")
    async def list_advisories(self, request: Request) -> Template:
        return page(
            request,
            "advisories.html",
            advisories=await advisories.public_list(),
            **_labels(),
        )

    @get("/portal/advisories.atom", name="portal_advisories_feed")
    async def feed(self, request: Request, token: FromQuery[str] = "") -> Template:
        """A company's private Atom feed: its token in the URL is its permission (feed readers
        send no session); an unknown token is 404, as is any other company's."""
        company, found = await advisories.feed_for_token(token[:100])
        updated = max((a.updated_at for a in found), default=company.created_at)
        return Template(
            "portal/advisories.atom",
            context={
                **_labels(),
                "company": company,
                "advisories": found,
                "updated": updated,
                "portal_url": outbox.letterhead().portal_url,
            },
            media_type="application/atom+xml; charset=utf-8",
        )
