"""Ids in paths, checked once for every route before its handler runs."""

from __future__ import annotations

from litestar import Request
from litestar.exceptions import NotFoundException

from backend.services.validation import MAX_ID


async def reject_impossible_ids(request: Request) -> None:
    """404 for an `{…:int}` path parameter that can name no row: beyond the 32-bit id columns
    (2**63 overflowed SQLite and PostgreSQL into a 500), zero or negative, or not written as
    plain ASCII digits (the path converter's int() also reads "+12", "1_2", "012" and "١٢")."""
    ids = [
        value
        for value in request.path_params.values()
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    if not ids:
        return
    segments = request.scope["path"].split("/")
    for value in ids:
        if not 0 < value <= MAX_ID or str(value) not in segments:
            raise NotFoundException()
