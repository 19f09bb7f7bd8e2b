"""What a purchase costs (SPEC §2, §4): the server prices every plan and top-up from the
catalog; the browser only says what to buy. Amounts in øre ex. MVA, with MVA and the total."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from backend.i18n import N_
from backend.services import catalog, clock, ledger
from backend.services.errors import ValidationFailed
from backend.services.money import mva_ore
from backend.services.validation import FieldError, convert_field, field
from backend.tables import (
    OrderKind,
)

MIN_TOPUP_HOURS = 1


MAX_TOPUP_HOURS = 200


@dataclass(frozen=True)
class Quote:
    kind: str
    product_codes: tuple[str, ...]
    hours: int
    amount_ore: int  # ex. MVA

    @property
    def mva_ore(self) -> int:
        return mva_ore(self.amount_ore)

    @property
    def total_ore(self) -> int:
        return self.amount_ore + self.mva_ore


async def quote(
    company_id: int, kind: str, hours: str | int, product_codes: Sequence[str]
) -> Quote:
    """The price of a plan or a top-up, from the catalog, or every reason it cannot be bought.
    (A charges order is priced from the charges it takes: see `charges.charges_order`.)"""
    return price(await catalog.current_offer(), kind, hours, product_codes)


def price(offer: catalog.Offer, kind: str, hours: str | int, product_codes: Sequence[str]) -> Quote:
    """`quote` with the offer read already (a form page has it): the same rule, no query."""
    if offer.prices is None:
        raise ValidationFailed({"form": N_("Prisene er ikke lagt inn ennå.")})
    errors: dict[str, str] = {}
    known = {p.code for p in offer.products}
    codes = tuple(dict.fromkeys(product_codes))  # unique, in the order given
    if not codes:
        errors["products"] = N_("Velg minst ett produkt.")
    elif not set(codes) <= known:
        errors["products"] = N_("Ukjent produkt.")
    if kind == OrderKind.plan.value:
        if errors:
            raise ValidationFailed(errors)
        return Quote(
            kind=kind,
            product_codes=codes,
            hours=0,
            amount_ore=offer.prices.plan_price_per_product_ore * len(codes),
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
    offer: catalog.Offer, kind: str, hours: str | int, product_codes: Sequence[str]
) -> tuple[Quote | None, str]:
    """What a form shows before payment: the quote Checkout will charge, or why there is none
    yet (the first message, for the reader's language)."""
    try:
        return price(offer, kind, hours, product_codes), ""
    except ValidationFailed as failed:
        return None, next(iter(failed.errors.values()), "")


def topup_expires_on(paid_at: datetime.datetime) -> datetime.date:
    """A top-up's lot: valid one year from the day of payment, that day taken in Europe/Oslo."""
    return ledger.lot_expires_on(clock.oslo_date(paid_at))


HOURS_MESSAGE = N_("Velg et helt antall timer fra 1 til 200.")


TopupHours = field(int, ge=MIN_TOPUP_HOURS, le=MAX_TOPUP_HOURS, message=HOURS_MESSAGE)


def _whole_hours(value: str | int) -> int | None:
    try:
        return convert_field(value if isinstance(value, int) else str(value), TopupHours)
    except FieldError:
        return None
