"""What a purchase costs (SPEC §2, §4): the server prices every plan, top-up and product added
to a plan from the catalog; the browser only says what to buy. Amounts in øre ex. MVA, with MVA
and the total."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from backend.i18n import N_
from backend.services import agreements, catalog, clock, ledger
from backend.services.errors import ValidationFailed
from backend.services.money import mva_ore
from backend.services.validation import FieldError, convert_field, field
from backend.tables import (
    OrderKind,
)

MIN_TOPUP_HOURS = 1


MAX_TOPUP_HOURS = 200


@dataclass(frozen=True)
class PlanAddition:
    """What products added to a plan are priced against (SPEC §2, "plan: priced pro rata"):
    the plan period in force on `today`, and the products it covers already."""

    agreement_id: int
    starts_on: datetime.date
    ends_on: datetime.date  # inclusive
    covered: frozenset[str]
    today: datetime.date

    @property
    def days_in_period(self) -> int:
        """The days of a 6-month period from the plan's start: what the catalog's price per 6
        months pays for. A plan bought here is such a period; one imported with its original
        dates (services/onboarding.py) may be longer or shorter, and is priced per 6 months
        all the same."""
        starts_on, ends_on = agreements.plan_period(self.starts_on)
        return (ends_on - starts_on).days + 1

    @property
    def days_left(self) -> int:
        """Today through the period's last day, both counted."""
        return (self.ends_on - self.today).days + 1


@dataclass(frozen=True)
class Quote:
    kind: str
    product_codes: tuple[str, ...]
    hours: int
    amount_ore: int  # ex. MVA
    # A plan addition's share of its period (0 for a whole period or a top-up).
    days_left: int = 0
    days_in_period: int = 0

    @property
    def mva_ore(self) -> int:
        return mva_ore(self.amount_ore)

    @property
    def total_ore(self) -> int:
        return self.amount_ore + self.mva_ore


def pro_rata_ore(amount_ore: int, days_left: int, days_in_period: int) -> int:
    """`amount_ore` × `days_left` / `days_in_period`, rounded down to whole øre: the rounding
    goes the customer's way, so nobody pays for a fraction of an øre the days left do not
    make up."""
    return amount_ore * days_left // days_in_period


async def quote(
    company_id: int, kind: str, hours: str | int, product_codes: Sequence[str]
) -> Quote:
    """The price of a plan or a top-up, from the catalog, or every reason it cannot be bought.
    (A charges order is priced from the charges it takes: see `charges.charges_order`.)"""
    return price(await catalog.current_offer(), kind, hours, product_codes)


def price(
    offer: catalog.Offer,
    kind: str,
    hours: str | int,
    product_codes: Sequence[str],
    addition: PlanAddition | None = None,
) -> Quote:
    """`quote` with the offer read already (a form page has it): the same rule, no query.

    A plan covers its products for 6 months at the catalog's price per product. Products
    added to the plan in force (`addition`, kind plan_addition) cost the same per product,
    pro rata for the days left of that period (`pro_rata_ore`); only products on sale that
    the period does not cover yet can be added."""
    if offer.prices is None:
        raise ValidationFailed({"form": N_("Prisene er ikke lagt inn ennå.")})
    errors: dict[str, str] = {}
    # Only active products are on sale (catalog.current_offer), so an inactive one is unknown.
    known = {p.code for p in offer.products}
    codes = tuple(dict.fromkeys(product_codes))  # unique, in the order given
    if not codes:
        errors["products"] = N_("Velg minst ett produkt.")
    elif not set(codes) <= known:
        errors["products"] = N_("Ukjent produkt.")
    if kind == OrderKind.plan_addition.value:
        if addition is None:
            errors = {"form": NO_PLAN_MESSAGE}
        elif not errors and set(codes) & addition.covered:
            errors["products"] = N_("Avtalen dekker allerede produktet.")
    if kind in (OrderKind.plan.value, OrderKind.plan_addition.value):
        if errors:
            raise ValidationFailed(errors)
        whole_period = offer.prices.plan_price_per_product_ore * len(codes)
        if addition is None or kind == OrderKind.plan.value:
            return Quote(kind=kind, product_codes=codes, hours=0, amount_ore=whole_period)
        return Quote(
            kind=kind,
            product_codes=codes,
            hours=0,
            amount_ore=pro_rata_ore(whole_period, addition.days_left, addition.days_in_period),
            days_left=addition.days_left,
            days_in_period=addition.days_in_period,
        )
    if kind == OrderKind.topup.value:
        whole_hours = _whole_hours(str(hours))
        if whole_hours is None:
            errors["hours"] = HOURS_MESSAGE
        if errors:
            raise ValidationFailed(errors)
        assert whole_hours is not None
        return Quote(
            kind=kind,
            product_codes=codes,
            hours=whole_hours,
            amount_ore=offer.prices.prepaid_hour_price_ore * whole_hours,
        )
    raise ValidationFailed({"kind": N_("Ukjent bestilling.")})


def preview(
    offer: catalog.Offer,
    kind: str,
    hours: str | int,
    product_codes: Sequence[str],
    addition: PlanAddition | None = None,
) -> tuple[Quote | None, str]:
    """What a form shows before payment: the quote Checkout will charge, or why there is none
    yet (the first message, for the reader's language)."""
    try:
        return price(offer, kind, hours, product_codes, addition), ""
    except ValidationFailed as failed:
        return None, next(iter(failed.errors.values()), "")


def topup_expires_on(paid_at: datetime.datetime) -> datetime.date:
    """A top-up's lot: valid one year from the day of payment, that day taken in Europe/Oslo."""
    return ledger.lot_expires_on(clock.oslo_date(paid_at))


HOURS_MESSAGE = N_("Velg et helt antall timer fra 1 til 200.")
NO_PLAN_MESSAGE = N_("Avtalen finnes ikke eller gjelder ikke i dag.")


TopupHours = field(int, ge=MIN_TOPUP_HOURS, le=MAX_TOPUP_HOURS, message=HOURS_MESSAGE)


def _whole_hours(value: str | int) -> int | None:
    try:
        return convert_field(value if isinstance(value, int) else str(value), TopupHours)
    except FieldError:
        return None
