"""Reading posted forms: every field as text, unknown fields refused."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Request

from backend.i18n import N_
from backend.services.errors import ValidationFailed
from backend.services.validation import CONTROL_CHARACTER, CONTROL_CHARACTER_MESSAGE

UNKNOWN_FIELD = N_("Skjemaet inneholdt ukjente felt. Last siden på nytt og prøv igjen.")


async def read_form(
    request: Request, fields: Iterable[str], lists: Iterable[str] = ()
) -> dict[str, Any]:
    """Text fields as `str`; fields named in `lists` (repeated checkboxes) as `list[str]`.

    A text field sent twice (a choice of packs plus an "other amount" box) keeps the last
    non-empty value. Control characters (NUL and the like; PostgreSQL refuses NUL in text)
    are refused here, for every form, at the field that holds them: the failure carries the
    input without them, so the form comes back as it was typed."""
    list_fields = set(lists)
    allowed = set(fields) | list_fields
    form = await request.form()
    values: dict[str, Any] = {name: [] for name in list_fields}
    errors: dict[str, str] = {}
    for key, value in form.multi_items():
        if key == "_csrf_token":
            continue
        if key not in allowed or not isinstance(value, str):
            raise ValidationFailed({"form": UNKNOWN_FIELD})
        if CONTROL_CHARACTER.search(value):
            errors[key] = CONTROL_CHARACTER_MESSAGE
            value = CONTROL_CHARACTER.sub("", value)
        if key in list_fields:
            values[key].append(value)
        elif value.strip() or key not in values:
            values[key] = value
    if errors:
        raise ValidationFailed(errors, values)
    return values
