"""Money is integer øre, ex. MVA; shown the Norwegian way ("1 234,50 kr") in either language."""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import format_currency, format_decimal

MVA_PERCENT = 25


def mva_ore(amount_ore: int) -> int:
    """25 % MVA on an amount ex. MVA, rounded half up to whole øre."""
    return (amount_ore * MVA_PERCENT + 50) // 100


def format_nok(amount_ore: int) -> str:
    return format_currency(Decimal(amount_ore) / 100, "NOK", locale="nb_NO")


# "1 234,50", "1234,5", "1234" or "1234.50", with or without "kr": what an admin types.
_NOK = re.compile(r"(?:kr\.?)?([0-9]{1,9})(?:[,.]([0-9]{1,2}))?(?:kr\.?|,-)?", re.ASCII)


def parse_nok(text: str) -> int | None:
    """An amount in kroner written the Norwegian way ("1 234,50") as øre, or None if it does
    not read as one. Spaces (also the no-break ones babel writes) group thousands."""
    compact = re.sub(r"[\s\u00a0\u202f]", "", text).lower()
    match = _NOK.fullmatch(compact)
    if match is None:
        return None
    kroner, decimals = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(kroner) * 100 + int(decimals)


def format_amount(amount_ore: int) -> str:
    """An amount as a form's box shows it: "1 234,50", no currency."""
    return format_decimal(Decimal(amount_ore) / 100, format="#,##0.00", locale="nb_NO")
