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


# Kroner as people type them: "1 234,50", "1.234,50", "1234,5", "1234.50", "1 234 kr",
# "kr 100", "100,-". Digits group in threes by a space or a dot; a comma or a dot and one or
# two digits are the øre.
_NOK = re.compile(r"([0-9]{1,3}(?:[ .][0-9]{3})+|[0-9]{1,9})(?:[,.]([0-9]{1,2}))?", re.ASCII)
_CURRENCY = re.compile(r"^(?:kr|nok)\.?\s*|\s*(?:kr|nok)\.?$|,-$", re.IGNORECASE)


def parse_nok(text: str) -> int | None:
    """An amount in kroner written the Norwegian way as øre, or None if it does not read as
    one (the one reading of a typed amount: refunds and the catalog's prices ask it). The
    no-break spaces babel writes count as spaces."""
    compact = re.sub(r"[\u00a0\u202f]", " ", text).strip()
    compact = _CURRENCY.sub("", compact).strip()
    match = _NOK.fullmatch(compact)
    if match is None:
        return None
    kroner = int(match.group(1).replace(" ", "").replace(".", ""))
    return kroner * 100 + int((match.group(2) or "").ljust(2, "0"))


def format_amount(amount_ore: int) -> str:
    """An amount as a form's box shows it: "1 234,50", no currency."""
    return format_decimal(Decimal(amount_ore) / 100, format="#,##0.00", locale="nb_NO")
