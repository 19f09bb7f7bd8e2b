"""The signed-in company's own pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath
from litestar.response import Response, Stream, Template

from backend.services import (
    advisories,
    api_tokens,
    catalog,
    clock,
    companies,
    overview,
    product_additions,
    statement,
    time_account,
    warnings,
)
from backend.services.availability import availability_now
from backend.tables import Company, User
from backend.web.errors import FormView
from backend.web.events import BALANCE_CHANGED
from backend.web.forms import form_operation, read_form, read_query, read_values
from backend.web.guards import allowed
from backend.web.templating import asks_for_region, form_response, page, redirect


async def _company_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    company = await companies.get_company(request.user.company)
    return _company_page(company, request.user, form=values, errors=errors)


async def _warning_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    company = await companies.get_company(request.user.company)
    return _company_page(company, request.user, warning_form=values, warning_errors=errors)


# The statement's regions: the filter form swaps the whole list, "Vis flere" appends rows.
USAGE_REGION = "usage-region"
USAGE_ROWS = "usage-rows"

# The dashboard's regions, by id: each refreshes itself when the page hears that what it shows
# changed (backend/web/events.py) and is then served alone, from the same one-statement read.
DASHBOARD_REGIONS = {
    "warnings": "portal/_warnings.html",
    "plan-summary": "portal/_plan_summary.html",
    "time-account": "portal/_time_account_summary.html",
    "open-tickets": "portal/_open_tickets.html",
    "charges-summary": "portal/_charges_summary.html",
    "recent-orders": "portal/_recent_orders.html",
    "advisories-summary": "portal/_advisories_summary.html",
}

COMPANY_FORM = FormView("portal/company.html", "portal/_company_form.html", _company_context)
WARNING_FORM = FormView("portal/company.html", "portal/_low_balance_form.html", _warning_context)


async def _tokens_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {
        "tokens": await api_tokens.tokens_of(request.user),
        "form": values,
        "errors": errors,
        "created": None,
        "secret": "",
    }


async def _account_products_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    choice = await product_additions.account_choice(request.user.company, clock.today())
    codes = sorted({code for lot in choice.lots for code in lot.product_codes})
    return {
        "choice": choice,
        "covered_names": ", ".join(await catalog.product_names(codes)),
        "form": values or {"products": []},
        "errors": errors,
    }


ACCOUNT_PRODUCTS_FORM = FormView(
    "portal/account_products.html", "portal/_account_products_form.html", _account_products_context
)


TOKENS_FORM = FormView("portal/company_api.html", "portal/_api_tokens.html", _tokens_context)


class PortalController(Controller):
    path = "/portal"
    guards = [allowed("view_company")]  # noqa: RUF012

    @get(name="dashboard")
    async def dashboard(self, request: Request) -> Template:
        user = request.user
        summary = await overview.account_summary(user.company)
        context = {
            "company": summary.company,
            "account": summary,
            "superuser": summary.superuser,
            "open_tickets": summary.open_tickets,
            "warnings": warnings.account_warnings(summary, clock.today()),
            "verdict_labels": advisories.VERDICT_LABELS,
        }
        for region, template_name in DASHBOARD_REGIONS.items():
            if asks_for_region(request, region):
                return Template(template_name, context=context, media_type=MediaType.HTML)
        availability = availability_now(summary.business.extra_closed_days)
        return page(request, "portal/dashboard.html", availability=availability, **context)

    @get("/account", name="account")
    async def account(self, request: Request) -> Template:
        account = await time_account.time_account(request.user.company, clock.today())
        return page(request, "portal/account.html", account=account)

    @get("/account/products", name="account_products", guards=[allowed("add_products")])
    async def show_account_products(self, request: Request) -> Template:
        """Add products to the time account, free (SPEC §2)."""
        context = await _account_products_context(request, {}, {})
        return page(request, "portal/account_products.html", **context)

    @post(
        "/account/products",
        name="account_products_add",
        operation_class=form_operation(product_additions.AccountAddition),
        guards=[allowed("add_products")],
        opt={"form": ACCOUNT_PRODUCTS_FORM},
    )
    async def add_account_products(self, request: Request) -> Response:
        values = await read_values(request, product_additions.AccountAddition)
        await product_additions.add_to_time_account(request.user, values)
        return redirect(request, "/portal/account", BALANCE_CHANGED)

    @get("/usage", name="usage")
    async def usage(self, request: Request) -> Template:
        chosen = read_query(request, statement.StatementFilter)
        found = await statement.page_of(request.user.company, chosen)
        filters = statement.filter_values(chosen)
        context = {
            "found": found,
            "filters": filters,
            "bounds": statement.period_bounds(chosen, clock.today()),
            "csv_url": f"/portal/usage.csv?{urlencode(filters)}",
            "next_url": f"/portal/usage?{urlencode({**filters, 'after': found.next_after})}",
        }
        if asks_for_region(request, USAGE_ROWS):
            return Template("portal/_usage_more.html", context=context)
        if asks_for_region(request, USAGE_REGION):
            return Template("portal/_usage.html", context=context)
        return page(
            request,
            "portal/usage.html",
            usage=await statement.overview(request.user.company, clock.today()),
            periods=statement.PERIODS,
            **context,
        )

    @get("/usage.csv", name="usage_csv")
    async def usage_csv(self, request: Request) -> Stream:
        chosen = read_query(request, statement.StatementFilter)
        return Stream(
            statement.csv_lines(request.user.company, chosen),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="forbruk.csv"'},
        )

    @get("/company", name="company")
    async def show_company(self, request: Request) -> Template:
        company = await companies.get_company(request.user.company)
        superuser = await companies.get_superuser(company.id)
        return page(request, "portal/company.html", **_company_page(company, superuser))

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
            **_company_page(company, superuser, saved=True),
        )

    @post(
        "/company/warnings",
        name="low_balance_update",
        operation_class=form_operation(warnings.LowBalanceThreshold),
        guards=[allowed("edit_company")],
        opt={"form": WARNING_FORM},
    )
    async def update_low_balance(self, request: Request) -> Template:
        form = await read_form(request, warnings.LowBalanceThreshold)
        company = await warnings.set_low_balance_threshold(request.user, form)
        superuser = await companies.get_superuser(company.id)
        return form_response(
            request,
            "portal/company.html",
            "portal/_low_balance_form.html",
            200,
            **_company_page(company, superuser, warning_saved=True),
        )

    @get("/company/api", name="company_api", guards=[allowed("manage_api_tokens")])
    async def company_api(self, request: Request) -> Template:
        context = await _tokens_context(request, {}, {})
        return page(request, "portal/company_api.html", **context)

    @post(
        "/company/api",
        name="api_token_create",
        operation_class=form_operation(api_tokens.NewToken),
        guards=[allowed("manage_api_tokens")],
        opt={"form": TOKENS_FORM},
    )
    async def create_api_token(self, request: Request) -> Template:
        # Answered with the page itself, not a redirect: the secret is shown this once.
        values = await read_values(request, api_tokens.NewToken)
        created, secret = await api_tokens.create_token(request.user, values)
        context = await _tokens_context(request, {}, {})
        context.update(created=created, secret=secret)
        return form_response(
            request, "portal/company_api.html", "portal/_api_tokens.html", 200, **context
        )

    @post(
        "/company/api/{token_id:int}/revoke",
        name="api_token_revoke",
        guards=[allowed("manage_api_tokens")],
    )
    async def revoke_api_token(self, request: Request, token_id: FromPath[int]) -> Response:
        await api_tokens.revoke_token(request.user, token_id)
        if asks_for_region(request, "api-tokens"):
            context = await _tokens_context(request, {}, {})
            return Template("portal/_api_tokens.html", context=context, status_code=200)
        return redirect(request, "/portal/company/api")


def _company_page(company: Company, superuser: User | None, **shown: Any) -> dict[str, Any]:
    """The company page: both its forms as the company is now, but for what `shown` says (what
    was typed, its errors, which form was just saved)."""
    return {
        "company": company,
        "superuser": superuser,
        "form": _company_form(company, superuser),
        "errors": {},
        "saved": False,
        "warning_form": {"low_balance_minutes": str(company.low_balance_minutes)},
        "warning_errors": {},
        "warning_saved": False,
        **shown,
    }


def _company_form(company: Company, superuser: User | None) -> dict[str, str]:
    return {
        "address": company.address,
        "postal_code": company.postal_code,
        "city": company.city,
        "name": superuser.name if superuser else "",
        "phone": superuser.phone if superuser else "",
    }
