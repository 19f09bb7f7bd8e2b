"""Reading posted forms: every field as text, unknown fields refused."""

from __future__ import annotations

from collections.abc import Iterable

from litestar import Request

from backend.i18n import N_
from backend.services.errors import ValidationFailed

UNKNOWN_FIELD = N_("Skjemaet inneholdt ukjente felt. Last siden på nytt og prøv igjen.")


async def read_form(request: Request, fields: Iterable[str]) -> dict[str, str]:
    allowed = set(fields)
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key == "_csrf_token":
            continue
        if key not in allowed or not isinstance(value, str):
            raise ValidationFailed({"form": UNKNOWN_FIELD})
        values[key] = value
    return values
