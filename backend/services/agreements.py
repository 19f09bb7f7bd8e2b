"""Support plans, "Fri support" (SPEC §2, alternative 1): 6 calendar months per period."""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from backend.db import json_rows, json_values
from backend.tables import Agreement, AgreementProduct

PLAN_MONTHS = 6


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` later, or the month's last day if it is shorter (31.08 → 28.02)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_years(day: datetime.date, years: int) -> datetime.date:
    return add_months(day, 12 * years)


def plan_period(starts_on: datetime.date) -> tuple[datetime.date, datetime.date]:
    """Start and (inclusive) end of a plan period: start + 6 calendar months − 1 day."""
    return starts_on, add_months(starts_on, PLAN_MONTHS) - datetime.timedelta(days=1)


async def next_plan_period(
    company_id: int, paid_on: datetime.date
) -> tuple[datetime.date, datetime.date]:
    """The period a plan bought (or paid) on `paid_on` runs: from the next start, 6 months."""
    return plan_period(await next_plan_start(company_id, paid_on))


async def next_plan_start(company_id: int, paid_on: datetime.date) -> datetime.date:
    """Buying while a plan runs renews it: the new period starts the day after the last
    period ends, so no day is lost. Otherwise it starts the day of payment."""
    latest = (
        await Agreement.objects()
        .where(
            (Agreement.company == company_id)
            & Agreement.cancelled_on.is_null()
            & (Agreement.ends_on >= paid_on)
        )
        .order_by(Agreement.ends_on, ascending=False)
        .first()
    )
    if latest is None:
        return paid_on
    return latest.ends_on + datetime.timedelta(days=1)


def in_force_on(on_date: datetime.date):
    """A plan period covers `on_date` when it runs that day and no refund had ended it by then."""
    return (
        (Agreement.starts_on <= on_date)
        & (Agreement.ends_on >= on_date)
        & (Agreement.cancelled_on.is_null() | (Agreement.cancelled_on > on_date))
    )


def product_in_force_on(on_date: datetime.date):
    """A plan's product row covers `on_date` when it was covered by then (chosen at purchase,
    or added on or before that day) and no refund of its addition had ended it: the rows of a
    period that `in_force_on` the same day."""
    return (
        AgreementProduct.covered_from.is_null() | (AgreementProduct.covered_from <= on_date)
    ) & (AgreementProduct.cancelled_on.is_null() | (AgreementProduct.cancelled_on > on_date))


async def create_plan(
    *,
    company_id: int,
    product_codes: Iterable[str],
    starts_on: datetime.date,
    ends_on: datetime.date,
    order_id: int | None = None,
) -> Agreement:
    """A plan period covering `product_codes` (at least one)."""
    codes = list(dict.fromkeys(product_codes))
    if not codes:
        raise ValueError("a plan covers at least one product")
    plan = Agreement(company=company_id, order=order_id, starts_on=starts_on, ends_on=ends_on)
    await plan.save()
    await AgreementProduct.insert(
        *(AgreementProduct(agreement=plan.id, product_code=code) for code in codes)
    )
    return plan


async def active_plans(company_id: int, on_date: datetime.date) -> list[Agreement]:
    """Plan periods that cover `on_date` (not ended, not cancelled by a refund by then)."""
    return await _with_products(
        await Agreement.objects().where((Agreement.company == company_id) & in_force_on(on_date)),
        on_date,
    )


async def current_and_future_plans(company_id: int, today: datetime.date) -> list[Agreement]:
    """Plans not ended by `today`, the current one first, each with `plan.product_codes`."""
    plans = await (
        Agreement.objects()
        .where(
            (Agreement.company == company_id)
            & (Agreement.ends_on >= today)
            & (Agreement.cancelled_on.is_null() | (Agreement.cancelled_on > today))
        )
        .order_by(Agreement.starts_on)
    )
    return await _with_products(plans, today)


def current_and_future_plans_json(engine, company: str, today: str) -> str:
    """`current_and_future_plans` as one column of a page's single query (services/overview.py):
    a JSON array; `company` and `today` are SQL expressions. Read back with `plans_from_json`."""
    codes = json_values(
        engine,
        "SELECT ap.product_code, ap.id FROM agreement_product AS ap"
        # Not those a refund of their addition ended (`product_in_force_on`).
        f" WHERE ap.agreement = a.id AND (ap.cancelled_on IS NULL OR ap.cancelled_on > {today})"
        " ORDER BY ap.id",
        "product_code",
        order_by="id",
    )
    select = (
        f"SELECT a.id, a.starts_on, a.ends_on, {codes} AS product_codes"
        f" FROM plan_agreement AS a WHERE a.company = {company} AND a.ends_on >= {today}"
        f" AND (a.cancelled_on IS NULL OR a.cancelled_on > {today})"
        " ORDER BY a.starts_on, a.id"
    )
    return json_rows(
        engine,
        select,
        ("id", "starts_on", "ends_on", "product_codes"),
        order_by="starts_on, id",
        json_columns=("product_codes",),
    )


@dataclass(frozen=True)
class PlanPeriod:
    """A plan period as pages show it (a read, not a row to save)."""

    id: int
    starts_on: datetime.date
    ends_on: datetime.date
    product_codes: list[str]


def plans_from_json(rows: list[dict]) -> list[PlanPeriod]:
    return [
        PlanPeriod(
            id=row["id"],
            starts_on=datetime.date.fromisoformat(row["starts_on"]),
            ends_on=datetime.date.fromisoformat(row["ends_on"]),
            product_codes=row["product_codes"],
        )
        for row in rows
    ]


async def _with_products(plans: list[Agreement], today: datetime.date) -> list[Agreement]:
    """Each plan with the products it covers in `plan.product_codes` (catalog codes): those
    not ended by `today` by a refund of their addition."""
    if not plans:
        return plans
    rows = (
        await AgreementProduct.select(AgreementProduct.agreement, AgreementProduct.product_code)
        .where(
            AgreementProduct.agreement.is_in([plan.id for plan in plans])
            & (AgreementProduct.cancelled_on.is_null() | (AgreementProduct.cancelled_on > today))
        )
        .order_by(AgreementProduct.id)
    )
    codes: dict[int, list[str]] = {}
    for row in rows:
        codes.setdefault(row["agreement"], []).append(row["product_code"])
    for plan in plans:
        plan.product_codes = codes.get(plan.id, [])
    return plans
