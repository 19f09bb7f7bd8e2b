"""The signed-in company's own pages."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Template

from backend.services import companies, overview
from backend.services.availability import availability_now
from backend.tables import Company, User
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_form
from backend.web.guards import allowed
from backend.web.templating import form_response, page


async def _company_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {
        "company": await companies.get_company(request.user.company),
        "superuser": request.user,
        "form": values,
        "errors": errors,
        "saved": False,
    }


COMPANY_FORM = FormView("portal/company.html", "portal/_company_form.html", _company_context)


class PortalController(Controller):
    path = "/portal"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get(name="dashboard")
    async def dashboard(self, request: Request) -> Template:
        user = request.user
        summary = await overview.account_summary(user.company)
        return page(
            request,
            "portal/dashboard.html",
            company=summary.company,
            account=summary,
            superuser=summary.superuser,
            availability=availability_now(),
            open_tickets=summary.open_tickets,
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

    @post(
        "/company",
        name="company_update",
        operation_class=form_operation(companies.CompanyDetails),
        guards=[allowed("edit_company")],
        opt={"form": COMPANY_FORM},
    )
    async def update_company(self, request: Request) -> Template:
        form = await read_form(request, companies.CompanyDetails)
        company = await companies.update_company(request.user, form)
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
