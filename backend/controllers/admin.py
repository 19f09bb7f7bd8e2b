"""The back office (issue 12), admins only: its index, the audit trail, the staff accounts."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Response, Template

from backend.services import audit, catalog, companies, onboarding, staff_accounts, validation
from backend.web.errors import FormView
from backend.web.forms import (
    form_operation,
    read_form,
    read_query_checked,
    read_values,
    read_values_and_files,
)
from backend.web.guards import allowed
from backend.web.templating import page, redirect

STAFF_URL = "/staff/admin/staff"


async def _staff_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    """The staff page; a failed form keeps what was typed: the new-staff form, or the reason
    given for one staff user's change (`staff_id` from the path)."""
    staff_id = request.path_params.get("staff_id")
    return {
        "staff": await staff_accounts.list_staff(),
        "create_form": values if staff_id is None else {},
        "create_errors": errors if staff_id is None else {},
        "change_user": staff_id,
        "change_form": values if staff_id is not None else {},
        "change_errors": errors if staff_id is not None else {},
    }


STAFF_FORM = FormView("staff/admin/staff.html", "staff/admin/_staff.html", _staff_context)


class AdminController(Controller):
    path = "/staff/admin"
    guards = [allowed("back_office")]  # noqa: RUF012

    @get(name="admin_index")
    async def index(self, request: Request) -> Template:
        return page(request, "staff/admin/index.html")

    @get("/audit", name="admin_audit", guards=[allowed("view_audit")])
    async def audit_trail(self, request: Request) -> Template:
        """The audit trail, newest first, filtered by company, actor and kind. A filter that
        makes no sense is said so, and the trail is shown unfiltered by it."""
        found_by, errors = read_query_checked(request, audit.AuditFilter)
        return page(
            request,
            "staff/admin/audit.html",
            result=await audit.entries(found_by),
            found_by=found_by,
            errors=errors,
            companies=await companies.list_companies(),
            actors=await audit.actors(),
            kinds=audit.KIND_LABELS,
        )

    # Staff accounts

    @get("/staff", name="admin_staff", guards=[allowed("manage_staff")])
    async def list_staff(self, request: Request) -> Template:
        return page(request, "staff/admin/staff.html", **await _staff_context(request, {}, {}))

    @post(
        "/staff",
        name="admin_staff_create",
        guards=[allowed("manage_staff")],
        operation_class=form_operation(staff_accounts.NewStaff),
        opt={"form": STAFF_FORM},
    )
    async def create_staff(self, request: Request) -> Response:
        form = await read_form(request, staff_accounts.NewStaff)
        await staff_accounts.create(request.user, form)
        return redirect(request, STAFF_URL)

    @post(
        "/staff/{staff_id:int}/deactivate",
        name="admin_staff_deactivate",
        guards=[allowed("manage_staff")],
        operation_class=form_operation(staff_accounts.StaffChange),
        opt={"form": STAFF_FORM},
    )
    async def deactivate_staff(self, request: Request, staff_id: FromPath[int]) -> Response:
        await staff_accounts.get_staff(staff_id)  # 404 before the form's 422
        form = await read_form(request, staff_accounts.StaffChange)
        await staff_accounts.deactivate(request.user, staff_id, form)
        return redirect(request, STAFF_URL)

    @post(
        "/staff/{staff_id:int}/reactivate",
        name="admin_staff_reactivate",
        guards=[allowed("manage_staff")],
        operation_class=form_operation(staff_accounts.StaffChange),
        opt={"form": STAFF_FORM},
    )
    async def reactivate_staff(self, request: Request, staff_id: FromPath[int]) -> Response:
        await staff_accounts.get_staff(staff_id)  # 404 before the form's 422
        form = await read_form(request, staff_accounts.StaffChange)
        await staff_accounts.reactivate(request.user, staff_id, form)
        return redirect(request, STAFF_URL)

    @post(
        "/staff/{staff_id:int}/reset",
        name="admin_staff_reset",
        guards=[allowed("manage_staff")],
        operation_class=form_operation(staff_accounts.StaffChange),
        opt={"form": STAFF_FORM},
    )
    async def reset_staff_sign_in(self, request: Request, staff_id: FromPath[int]) -> Response:
        await staff_accounts.get_staff(staff_id)  # 404 before the form's 422
        form = await read_form(request, staff_accounts.StaffChange)
        await staff_accounts.reset_sign_in(request.user, staff_id, form)
        return redirect(request, STAFF_URL)


# Existing customers (services/onboarding.py)

ONBOARDING_URL = "/staff/admin/onboarding"
# The upload is read whole before it is checked: room for the largest file the service reads,
# so one a little larger gets its message, not a 413.
CSV_BODY_LIMIT = 4 * onboarding.MAX_FILE_BYTES


def _onboarding_context(which: str):
    async def context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
        """The onboarding page; a failed form keeps what was typed (`which`: "form" or
        "csv", the form that failed)."""
        return {
            "products": (await catalog.current_offer()).products,
            "imports": await onboarding.recent_imports(),
            "columns": onboarding.COLUMNS,
            "required_columns": onboarding.REQUIRED_COLUMNS,
            "form": values if which == "form" else {},
            "errors": errors if which == "form" else {},
            "csv_form": values if which == "csv" else {},
            "csv_errors": errors if which == "csv" else {},
            "idempotency_key": values.get("idempotency_key") or secrets.token_urlsafe(16),
            # After a CSV import: how many companies it created (a number, or nothing shown).
            "imported": validation.whole_number(
                request.query_params.get("imported", ""), 0, onboarding.MAX_ROWS
            ),
        }

    return context


ONBOARDING_FORM = FormView(
    "staff/admin/onboarding.html", "staff/admin/_onboarding.html", _onboarding_context("form")
)
CSV_FORM = FormView(
    "staff/admin/onboarding.html", "staff/admin/_onboarding.html", _onboarding_context("csv")
)


class OnboardingController(Controller):
    path = ONBOARDING_URL
    guards = [allowed("back_office"), allowed("onboard_customers")]  # noqa: RUF012

    @get(name="admin_onboarding")
    async def show(self, request: Request) -> Template:
        context = await _onboarding_context("")(request, {}, {})
        return page(request, "staff/admin/onboarding.html", **context)

    @post(
        name="admin_onboarding_create",
        operation_class=form_operation(onboarding.Onboarding),
        opt={"form": ONBOARDING_FORM},
    )
    async def create(self, request: Request) -> Response:
        values = await read_values(request, onboarding.Onboarding)
        company_id = await onboarding.onboard(request.user, values)
        return redirect(request, f"/staff/companies/{company_id}")

    @post(
        "/csv",
        name="admin_onboarding_csv",
        operation_class=form_operation(onboarding.CsvUpload, files=True),
        opt={"form": CSV_FORM},
        request_max_body_size=CSV_BODY_LIMIT,
    )
    async def check_csv(self, request: Request) -> Template:
        values, files = await read_values_and_files(request, onboarding.CsvUpload)
        check = await onboarding.dry_run(request.user, values, files)
        return _check_page(request, check, values)

    @post(
        "/csv/confirm",
        name="admin_onboarding_csv_confirm",
        operation_class=form_operation(onboarding.CsvConfirm),
        opt={"form": CSV_FORM},
        request_max_body_size=CSV_BODY_LIMIT,
    )
    async def confirm_csv(self, request: Request) -> Response:
        form = await read_form(request, onboarding.CsvConfirm)
        result = await onboarding.import_csv(request.user, form)
        if result.check is not None:
            return _check_page(request, result.check, {"reason": form.reason})
        return redirect(request, f"{ONBOARDING_URL}?imported={len(result.company_ids)}")


def _check_page(request: Request, check: onboarding.CsvCheck, values: dict) -> Template:
    """The dry run: each row and what it would create, every message; 422 when any."""
    return page(
        request,
        "staff/admin/onboarding_check.html",
        status_code=200 if check.ok else 422,
        check=check,
        reason=values.get("reason", ""),
    )
