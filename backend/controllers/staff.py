"""The reseller's own console (technicians and admins)."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.response import Template

from backend.services import companies
from backend.web.security import requires_staff
from backend.web.templating import page


class StaffController(Controller):
    path = "/staff"
    guards = [requires_staff]  # noqa: RUF012

    @get(name="staff_home")
    async def home(self, request: Request) -> Template:
        return page(request, "staff/home.html", companies=await companies.list_companies())
