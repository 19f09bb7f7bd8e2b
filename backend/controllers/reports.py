"""The back office's reports (admins only): the monthly figures with their charts, the
follow-up list, and both as CSV."""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.response import Stream, Template

from backend.services import clock, reports
from backend.web.forms import read_query
from backend.web.guards import allowed
from backend.web.templating import page


def _range(request: Request) -> tuple[reports.ReportQuery, reports.Range]:
    query = read_query(request, reports.ReportQuery)
    return query, reports.months_of(query, clock.today())


def _csv(lines, filename: str) -> Stream:
    return Stream(
        lines,
        media_type="text/csv",  # Litestar adds "; charset=utf-8"
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


class ReportsController(Controller):
    path = "/staff/admin/reports"
    guards = [allowed("view_reports")]  # noqa: RUF012

    @get(name="admin_reports")
    async def show(self, request: Request) -> Template:
        query, chosen = _range(request)
        months = await reports.monthly(chosen.months)
        shown = {"from": f"{chosen.months[0]:%Y-%m}", "to": f"{chosen.months[-1]:%Y-%m}"}
        return page(
            request,
            "staff/reports.html",
            months=months,
            follow_up=await reports.follow_up(clock.today()),
            typed={"from": query.start, "to": query.end},
            shown=shown,
            errors=chosen.errors,
            alternative_labels=reports.ALTERNATIVE_LABELS,
            what_labels=reports.WHAT_LABELS,
            months_csv_url=f"/staff/admin/reports/months.csv?{urlencode(shown)}",
        )

    @get("/months.csv", name="admin_reports_months_csv")
    async def months_csv(self, request: Request) -> Stream:
        _, chosen = _range(request)
        months = await reports.monthly(chosen.months)
        return _csv(reports.monthly_csv(months), "rapport-maaneder.csv")

    @get("/follow-up.csv", name="admin_reports_follow_up_csv")
    async def follow_up_csv(self, request: Request) -> Stream:
        found = await reports.follow_up(clock.today())
        return _csv(reports.follow_up_csv(found), "oppfolging.csv")
