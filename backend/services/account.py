"""What a company has (SPEC §7): its plan, its minutes and lots, its orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.services import agreements, billing, clock, ledger
from backend.tables import Agreement, Company, Lot, Order, Product


@dataclass(frozen=True)
class AccountSummary:
    company: Company
    plans: list[Agreement]  # current first, then renewals already bought
    remaining_minutes: int
    lots: list[Lot]
    orders: list[Order]
    product_names: dict[str, str]  # catalog code → name
    outstanding_ore: int  # hourly charges not paid yet, ex. MVA

    @property
    def active_plan(self) -> Agreement | None:
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
    today = clock.today()
    company = await Company.objects().get(Company.id == company_id)
    lots = await ledger.open_lots(company_id, today)
    return AccountSummary(
        company=company,
        plans=await agreements.current_and_future_plans(company_id, today),
        # The balance is the sum of the open lots: one read (and one expiry pass), not two.
        remaining_minutes=sum(lot.remaining_minutes for lot in lots),
        lots=lots,
        orders=await billing.orders_of(company_id),
        product_names={p.code: p.name for p in await Product.objects()},
        outstanding_ore=await billing.outstanding_ore(company_id),
    )


def as_json(summary: AccountSummary) -> dict[str, Any]:
    company = summary.company
    return {
        "company": {"id": company.id, "name": company.name, "org_number": company.org_number},
        "plan": {
            "active": summary.active_plan is not None,
            "ends_on": summary.plan_ends_on.isoformat() if summary.plan_ends_on else None,
            "products": summary.plan_products,
        },
        "remaining_minutes": summary.remaining_minutes,
        "lots": [
            {
                "minutes": lot.minutes,
                "remaining_minutes": lot.remaining_minutes,
                "expires_on": lot.expires_on.isoformat(),
            }
            for lot in summary.lots
        ],
        "orders": [
            {"id": o.id, "kind": o.kind, "status": o.status, "amount_ore": o.amount_ore}
            for o in summary.orders
        ],
    }
