"""The customer API (JSON), for the company's own systems: `Authorization: Bearer <token>`
(services/api_tokens.py says what a token may do) or the signed-in browser session. Every
failure is JSON too (web/errors.py); nothing here is cached (web/security.py)."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from backend.services import customer_api
from backend.web.errors import ApiError
from backend.web.forms import query_operation, read_api_query
from backend.web.guards import allowed

BEARER = "BearerToken"


def _failure(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ApiError, description=description, generate_examples=False)


FAILURES = {
    401: _failure("No valid token (or session): WWW-Authenticate: Bearer"),
    403: _failure("Signed in as staff: the API is the customer's"),
}
BAD_QUERY = {400: _failure("A query parameter that does not read; `errors` says which")}


class ApiController(Controller):
    path = "/api/v1"
    guards = [allowed("view_company")]  # noqa: RUF012
    tags = ["Customer API"]  # noqa: RUF012
    security = [{BEARER: []}]  # noqa: RUF012

    @get("/account", name="api_account", responses={**FAILURES, **BAD_QUERY})
    async def account(self, request: Request) -> customer_api.Account:
        """The company, its plan, its time account, outstanding hourly charges and orders."""
        read_api_query(request, customer_api.NoQuery)
        return await customer_api.account(request.user)

    @get(
        "/tickets",
        name="api_tickets",
        operation_class=query_operation(customer_api.TicketsQuery),
        responses={**FAILURES, **BAD_QUERY},
    )
    async def tickets(self, request: Request) -> customer_api.TicketList:
        """The company's tickets, newest first, a page at a time."""
        query = read_api_query(request, customer_api.TicketsQuery)
        return await customer_api.ticket_list(request.user, query)

    @get(
        "/tickets/{number:str}",
        name="api_ticket",
        responses={**FAILURES, **BAD_QUERY, 404: _failure("No such ticket of this company")},
    )
    async def ticket(self, request: Request, number: FromPath[str]) -> customer_api.TicketDetail:
        """One ticket by its number (SUP-000123, or 123): its thread and its time entries."""
        read_api_query(request, customer_api.NoQuery)
        return await customer_api.ticket_detail(request.user, number)

    @get(
        "/usage",
        name="api_usage",
        operation_class=query_operation(customer_api.UsageQuery),
        responses={**FAILURES, **BAD_QUERY},
    )
    async def usage(self, request: Request) -> customer_api.Usage:
        """The usage statement: every movement of minutes and piece of support time, newest
        first, with the balance after each row, a page at a time."""
        query = read_api_query(request, customer_api.UsageQuery)
        return await customer_api.usage(request.user, query)

    @get("/advisories", name="api_advisories", responses={**FAILURES, **BAD_QUERY})
    async def advisories(self, request: Request) -> customer_api.AdvisoryList:
        """Update advisories for the products the company's agreements cover, newest first,
        withdrawn ones too (with `withdrawn_at`), for software-distribution tools."""
        read_api_query(request, customer_api.NoQuery)
        return await customer_api.advisory_list(request.user)
