"""The signed-in company's own pages."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.response import Template

from backend.services import account, companies, tickets
from backend.services.availability import availability_now
from backend.services.errors import NotAllowed, ValidationFailed
from backend.tables import Company, User
from backend.web.forms import read_form
from backend.web.security import requires_company_user
from backend.web.templating import form_response, page


class PortalController(Controller):
    path = "/portal"
    guards = [requires_company_user]  # noqa: RUF012

    @get(name="dashboard")
    async def dashboard(self, request: Request) -> Template:
        user = request.user
        summary = await account.account_summary(user.company)
        return page(
            request,
            "portal/dashboard.html",
            company=summary.company,
            account=summary,
            superuser=summary.superuser,
            availability=availability_now(),
            open_tickets=summary.open_tickets,
            status_labels=tickets.STATUS_LABELS,
        )

    @get("/company", name="company")
    async def show_company(self, request: Request) -> Template:
        company = await companies.get_company(request.user.company)
        superuser = await companies.get_superuser(company.id)
        return page(
            request,
            "portal/company.html",
            company=company,
            superuser=superuser,
            form=_company_form(company, superuser),
            errors={},
            saved=False,
        )

    @post("/company", name="company_update")
    async def update_company(self, request: Request) -> Template:
        user = request.user
        form: dict[str, str] = {}
        try:
            form = await read_form(request, companies.COMPANY_FIELDS)
            company = await companies.update_company(user, form)
        except ValidationFailed as failed:
            form = failed.values or form
            company = await companies.get_company(user.company)
            return form_response(
                request,
                "portal/company.html",
                "portal/_company_form.html",
                422,
                company=company,
                superuser=user,
                form=form,
                errors=failed.errors,
                saved=False,
            )
        except NotAllowed:
            raise PermissionDeniedException() from None
        superuser = await companies.get_superuser(company.id)
        return form_response(
            request,
            "portal/company.html",
            "portal/_company_form.html",
            200,
            company=company,
            superuser=superuser,
            form=_company_form(company, superuser),
            errors={},
            saved=True,
        )


def _company_form(company: Company, superuser: User | None) -> dict[str, str]:
    return {
        "address": company.address,
        "postal_code": company.postal_code,
        "city": company.city,
        "name": superuser.name if superuser else "",
        "phone": superuser.phone if superuser else "",
    }
