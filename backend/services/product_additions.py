"""Adding covered products to an active agreement (SPEC §2: "The superuser can add covered
products to an active agreement (plan: priced pro rata; time account: free)").

Plan. The superuser picks products on sale that the plan period in force today does not cover
yet; `pricing.price` (the purchase's pricing) charges the plan's price per product for the
days left of that period. It is an order of kind plan_addition naming the period, paid through
Checkout and fulfilled exactly once by services/fulfilment.py, which calls `add_to_plan` in the
transaction that marks the order paid. The products cover from the day of payment to the
period's end; a refund of the order ends them on the day it arrives (`end_addition`), as a
refund of a plan ends the plan.

The addition covers the current period only. A renewal already bought covers the products
chosen when it was bought (the page says so), and a renewal bought later is priced for all its
products in full, like any plan purchase.

Time account. Free: the chosen products are added to every unexpired lot of the company that
lacks them, after one confirmation. Adding what is there already changes nothing, so the same
form twice is the same as once.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from backend.db import is_unique_violation, lock_row, write_transaction
from backend.i18n import N_
from backend.services import agreements, audit, catalog, clock, ledger, policy, pricing
from backend.services.errors import ValidationFailed
from backend.services.validation import convert, field
from backend.tables import (
    Agreement,
    AgreementProduct,
    AuditKind,
    Company,
    Lot,
    LotProduct,
    Order,
    OrderKind,
    User,
)


@dataclass(frozen=True)
class PlanChoice:
    """What the plan's "add products" page offers: the period in force today and its
    products, the products on sale it does not cover, and a renewal already bought, if any
    (which the addition does not reach)."""

    plan: Agreement  # with `plan.product_codes`
    addition: pricing.PlanAddition
    offer: catalog.Offer
    renewal: Agreement | None

    @property
    def addable(self) -> list[catalog.OfferedProduct]:
        return [p for p in self.offer.products if p.code not in self.addition.covered]


async def plan_choice(
    company_id: int, today: datetime.date, agreement_id: int | None = None
) -> PlanChoice | None:
    """The company's plan period in force on `today` (the one `agreement_id` names, when
    given: None if that is not one of them), or None without one."""
    in_force = await agreements.active_plans(company_id, today)
    if agreement_id is not None:
        plan = next((p for p in in_force if p.id == agreement_id), None)
    else:
        plan = min(in_force, key=lambda p: (p.starts_on, p.id), default=None)
    if plan is None:
        return None
    # Every period in force today counts: a product one of them covers is not sold again.
    covered = frozenset(code for p in in_force for code in p.product_codes)
    later = await agreements.current_and_future_plans(company_id, today)
    renewal = next((p for p in later if p.starts_on > plan.ends_on), None)
    return PlanChoice(
        plan=plan,
        addition=pricing.PlanAddition(
            agreement_id=plan.id,
            starts_on=plan.starts_on,
            ends_on=plan.ends_on,
            covered=covered,
            today=today,
        ),
        offer=await catalog.current_offer(),
        renewal=renewal,
    )


def preview(choice: PlanChoice | None, products: list[str]) -> tuple[pricing.Quote | None, str]:
    """What the form shows before payment: the quote Checkout will charge, or why none."""
    if choice is None:
        return None, pricing.NO_PLAN_MESSAGE
    return pricing.preview(
        choice.offer, OrderKind.plan_addition.value, "", products, choice.addition
    )


async def place_plan_addition(user: User, agreement_id: int, products: list[str]) -> Order:
    """A pending plan_addition order at the server's price, for the user's own plan period in
    force today. Another company's period, one that has ended, or none, gets the same message:
    ids of other companies' rows reveal nothing."""
    policy.require(user, "add_products")
    choice = await plan_choice(user.company, clock.today(), agreement_id)
    if choice is None:
        raise ValidationFailed({"form": pricing.NO_PLAN_MESSAGE})
    priced = pricing.price(
        choice.offer, OrderKind.plan_addition.value, "", products, choice.addition
    )
    order = Order(
        company=user.company,
        created_by=user.id,
        kind=priced.kind,
        hours=0,
        product_codes=",".join(priced.product_codes),
        amount_ore=priced.amount_ore,
        mva_ore=priced.mva_ore,
        total_ore=priced.total_ore,
        agreement=choice.plan.id,
    )
    await order.save()
    return order


@dataclass(frozen=True)
class Added:
    """What fulfilling a plan_addition did: the products it added, those the period had
    already (another order added them meanwhile), and whether the period was still in force
    on the day of payment (if not, nothing was added)."""

    added: list[str]
    already: list[str]
    in_force: bool


async def add_to_plan(order: Order, paid_on: datetime.date) -> Added:
    """Inside fulfilment's transaction, with the company locked: the order's products onto its
    plan period, covering from `paid_on`, unless the period has ended or a refund ended it by
    then, or if any of them is on the period already (no row twice: one per product). One
    whose earlier addition a refund ended is covered again, by this order."""
    codes = [code for code in order.product_codes.split(",") if code]
    plan = await (
        Agreement.objects()
        .where(
            (Agreement.id == order.agreement)
            & (Agreement.company == order.company)
            & agreements.in_force_on(paid_on)
        )
        .first()
    )
    if plan is None:
        return Added(added=[], already=[], in_force=False)
    rows = {
        row.product_code: row
        for row in await AgreementProduct.objects().where(
            (AgreementProduct.agreement == plan.id) & AgreementProduct.product_code.is_in(codes)
        )
    }

    def covered(code: str) -> bool:
        row = rows.get(code)
        return row is not None and (row.cancelled_on is None or row.cancelled_on > paid_on)

    already = [code for code in codes if covered(code)]
    if already:
        # Another order added some of them meanwhile. All or nothing: any refund of an addition
        # ends all its products, so a partial refund of the overlap would end the rest too;
        # this order adds nothing and its payment goes back in full.
        return Added(added=[], already=already, in_force=True)
    added: list[str] = []
    for code in codes:
        row = rows.get(code)
        if row is None:
            await AgreementProduct(
                agreement=plan.id, product_code=code, order=order.id, covered_from=paid_on
            ).save()
            added.append(code)
        elif row.cancelled_on is not None and row.cancelled_on <= paid_on:
            await AgreementProduct.update(
                {
                    AgreementProduct.order: order.id,
                    AgreementProduct.covered_from: paid_on,
                    AgreementProduct.cancelled_on: None,
                }
            ).where(AgreementProduct.id == row.id)
            added.append(code)
    return Added(added=added, already=[], in_force=True)


async def added_period(order: Order) -> agreements.PlanPeriod | None:
    """The days a plan_addition's products were added for (from the day of payment to the
    period's end), with those products; None if it added none (not paid, or the period had
    ended)."""
    rows = await AgreementProduct.objects().where(AgreementProduct.order == order.id)
    if not rows:
        return None
    plan = await Agreement.objects().get(Agreement.id == rows[0].agreement)
    return agreements.PlanPeriod(
        id=plan.id,
        starts_on=min(row.covered_from or plan.starts_on for row in rows),
        ends_on=plan.ends_on,
        product_codes=[row.product_code for row in rows],
    )


async def end_addition(order: Order, on_date: datetime.date) -> None:
    """A refund of a plan_addition order: the products it added cover nothing from `on_date`
    on (as a refund of a plan ends the plan, SPEC §4). Twice is once."""
    await AgreementProduct.update({AgreementProduct.cancelled_on: on_date}).where(
        (AgreementProduct.order == order.id) & AgreementProduct.cancelled_on.is_null()
    )


# --- the time account: free -------------------------------------------------------------


@dataclass(frozen=True)
class AccountChoice:
    """What the time account's "add products" page offers: the lots with minutes left and
    the products on sale that at least one of them does not pay for."""

    lots: list[ledger.OpenLot]
    offer: catalog.Offer

    @property
    def covered(self) -> set[str]:
        """Products every open lot pays for: nothing to add there."""
        sets = [set(lot.product_codes) for lot in self.lots]
        return set.intersection(*sets) if sets else set()

    @property
    def addable(self) -> list[catalog.OfferedProduct]:
        return [p for p in self.offer.products if p.code not in self.covered]


async def account_choice(company_id: int, today: datetime.date) -> AccountChoice:
    lots, offer = await ledger.open_lots_and_offer(company_id, today)
    return AccountChoice(lots=lots, offer=offer)


class AccountAddition(msgspec.Struct):
    """The time account's form: the products to add (checked against the catalog)."""

    products: list[field(str, max_length=40)] = msgspec.field(default_factory=list)


NO_LOTS_MESSAGE = N_("Tidskontoen har ingen timer igjen å legge produkter til.")


async def add_to_time_account(user: User, form: Mapping[str, Any]) -> list[str]:
    """Free (SPEC §2): the chosen products onto every lot of the company still within its
    year, so its minutes pay for support on them too. Returns the products some lot gained;
    none when every lot had them (a double click, a resubmitted form). The time account must
    have minutes left (an active agreement); only products on sale can be added."""
    policy.require(user, "add_products")
    chosen = convert(form, AccountAddition)
    today = clock.today()
    choice = await account_choice(user.company, today)
    codes = list(dict.fromkeys(chosen.products))
    if not choice.lots:
        raise ValidationFailed({"form": NO_LOTS_MESSAGE}, dict(form))
    if not codes:
        raise ValidationFailed({"products": N_("Velg minst ett produkt.")}, dict(form))
    if not set(codes) <= {p.code for p in choice.offer.products}:
        raise ValidationFailed({"products": N_("Ukjent produkt.")}, dict(form))
    try:
        return await _add_to_lots(user, codes, today)
    except Exception as error:
        if not is_unique_violation(error):
            raise
        return []  # the same form at the same moment added them


async def _add_to_lots(user: User, codes: list[str], today: datetime.date) -> list[str]:
    async with write_transaction(Lot._meta.db):
        await lock_row(Company, user.company)
        lots = await Lot.select(Lot.id).where(
            (Lot.company == user.company) & (Lot.expires_on > today)
        )
        lot_ids = [row["id"] for row in lots]
        have = {
            (row["lot"], row["product_code"])
            for row in await LotProduct.select(LotProduct.lot, LotProduct.product_code).where(
                LotProduct.lot.is_in(lot_ids or [0]) & LotProduct.product_code.is_in(codes)
            )
        }
        missing = [(lot, code) for lot in lot_ids for code in codes if (lot, code) not in have]
        if not missing:
            return []
        await LotProduct.insert(*(LotProduct(lot=lot, product_code=c) for lot, c in missing))
        added = list(dict.fromkeys(code for _, code in missing))
        await audit.record(
            user,
            AuditKind.products_added,
            company=user.company,
            subject="time_account",
            before=None,
            after={"products": added, "lots": sorted({lot for lot, _ in missing})},
            reason="Lagt til av superbrukeren (gratis, SPEC §2)",
        )
        return added
