"""Counting the SQL statements a request costs, on either engine (tests/test_query_counts.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def counted_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement the engine runs inside the block, in order (raw ones included): both
    engines send each query, built or raw, through `run_querystring` (DDL through `run_ddl`)."""
    from backend.tables import Company

    engine_class = type(Company._meta.db)
    statements: list[str] = []
    run_querystring = engine_class.run_querystring
    run_ddl = engine_class.run_ddl

    async def counted_querystring(self: Any, querystring: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(querystring))
        return await run_querystring(self, querystring, *args, **kwargs)

    async def counted_ddl(self: Any, ddl: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(ddl)
        return await run_ddl(self, ddl, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(engine_class, "run_querystring", counted_querystring)
        patch.setattr(engine_class, "run_ddl", counted_ddl)
        yield statements


async def statements_of(
    client: Any, path: str, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str] | None = None
) -> list[str]:
    """The statements of one GET of `path` by `client` (which must answer 200)."""
    with counted_statements(monkeypatch) as statements:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return statements
