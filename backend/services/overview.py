"""What a company has (SPEC §7): its plan, its minutes and lots, its orders."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from piccolo.engine.base import Engine

from backend.db import date_parameter, fetch, from_json, json_rows
from backend.services import (
    advisories,
    agreements,
    business,
    catalog,
    charges,
    clock,
    ledger,
    orders,
    tickets,
)
from backend.services.errors import NotAllowed
from backend.tables import Company, Role

RECENT_ORDERS = 5
OPEN_TICKETS = 5


@dataclass(frozen=True)
class AccountSummary:
    company: Company
    plans: list[agreements.PlanPeriod]  # current first, then renewals already bought
    remaining_minutes: int
    lots: list[ledger.OpenLot]
    orders: list[orders.OrderLine]  # the latest RECENT_ORDERS, newest first
    product_names: dict[str, str]  # catalog code → name
    outstanding_ore: int  # hourly charges not paid yet, ex. MVA
    superuser: dict[str, str] | None = None  # name, email, phone
    open_tickets: list[tickets.OpenTicket] = field(default_factory=list)
    # A lot within its year, used up or not (ledger.has_time_account_sql).
    has_time_account: bool = False
    # The business's settings (services/business.py): the dashboard says whether support is open.
    business: business.Business = field(default_factory=business.defaults)
    # Update advisories for the covered products: every "do not install" in force, the latest.
    advisories: list[advisories.DashboardAdvisory] = field(default_factory=list)

    @property
    def active_plan(self) -> agreements.PlanPeriod | None:
        today = clock.today()
        return next((p for p in self.plans if p.starts_on <= today), None)

    @property
    def plan_ends_on(self):
        return self.plans[-1].ends_on if self.plans else None

    @property
    def plan_products(self) -> list[str]:
        plan = self.active_plan
        return plan.product_codes if plan else []

    def names(self, codes: list[str]) -> str:
        return ", ".join(self.product_names.get(code, code) for code in codes if code)


async def account_summary(company_id: int) -> AccountSummary:
    """Everything the dashboard shows, read in one statement: each region is a subquery that
    the service owning its rule writes (usable lots: ledger; plans: agreements; orders: orders;
    what is owed: charges; open tickets: tickets; product names: catalog; update advisories:
    advisories). Only reads: lots that have expired count for nothing here, whether or not the
    sweep has written them off."""
    engine = Company._meta.db
    rows = await fetch(Company, _summary_sql(engine), clock.today(), company_id)
    if not rows:
        raise NotAllowed("no such company")
    row = dict(rows[0])
    lots = ledger.lots_from_json(from_json(row.pop("lots")))
    superusers = from_json(row.pop("superuser"))
    return AccountSummary(
        plans=agreements.plans_from_json(from_json(row.pop("plans"))),
        remaining_minutes=sum(lot.remaining_minutes for lot in lots),
        lots=lots,
        orders=orders.orders_from_json(from_json(row.pop("orders"))),
        product_names={p["code"]: p["name"] for p in from_json(row.pop("products"))},
        outstanding_ore=int(row.pop("outstanding_ore")),
        superuser=superusers[0] if superusers else None,
        open_tickets=from_json(row.pop("open_tickets"), list[tickets.OpenTicket]),
        has_time_account=bool(row.pop("has_time_account")),
        business=business.from_column(row.pop("business")),
        advisories=from_json(row.pop("advisories"), list[advisories.DashboardAdvisory]),
        company=Company(**row, _exists_in_db=True),
    )


@functools.cache
def _summary_sql(engine: Engine) -> str:
    company_columns = ", ".join(
        f"c.{column._meta.db_column_name}" for column in Company._meta.columns
    )
    superuser = json_rows(
        engine,
        "SELECT u.name, u.email, u.phone FROM portal_user AS u"
        f" WHERE u.company = c.id AND u.role = '{Role.superuser.value}' ORDER BY u.id LIMIT 1",
        ("name", "email", "phone"),
        order_by="name",
    )
    return (
        f"SELECT {company_columns},"
        f" {ledger.open_lots_json(engine, 'c.id', 'p.today')} AS lots,"
        f" {ledger.has_time_account_sql('c.id', 'p.today')} AS has_time_account,"
        f" {agreements.current_and_future_plans_json(engine, 'c.id', 'p.today')} AS plans,"
        f" {orders.recent_orders_json(engine, 'c.id', RECENT_ORDERS)} AS orders,"
        f" {charges.outstanding_ore_sql('c.id')} AS outstanding_ore,"
        f" {catalog.products_json(engine)} AS products,"
        f" {superuser} AS superuser,"
        f" {business.settings_json(engine)} AS business,"
        f" {tickets.open_tickets_json(engine, 'c.id', OPEN_TICKETS)} AS open_tickets,"
        f" {advisories.dashboard_json(engine, 'c.id', 'p.today')} AS advisories"
        f" FROM company AS c CROSS JOIN (SELECT {date_parameter(engine)} AS today) AS p"
        " WHERE c.id = {}"
    )
