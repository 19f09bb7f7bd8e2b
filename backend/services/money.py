"""Money is integer øre, ex. MVA; shown the Norwegian way ("1 234,50 kr") in either language."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

MVA_PERCENT = 25


def mva_ore(amount_ore: int) -> int:
    """25 % MVA on an amount ex. MVA, rounded half up to whole øre."""
    return (amount_ore * MVA_PERCENT + 50) // 100


def format_nok(amount_ore: int) -> str:
    return format_currency(Decimal(amount_ore) / 100, "NOK", locale="nb_NO")
