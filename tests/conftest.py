"""Every test run gets its own fresh database: a temporary SQLite file by default, or a new
PostgreSQL database on the server DATABASE_URL points to (dropped at the end)."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

RUN_DIR = Path(tempfile.mkdtemp(prefix="portal-test-"))
_SERVER_URL = os.environ.get("DATABASE_URL", "")
_PG_DATABASE: str | None = None

if _SERVER_URL.startswith(("postgresql://", "postgres://")):
    _PG_DATABASE = f"portal_test_{secrets.token_hex(4)}"
    _parts = urlsplit(_SERVER_URL)
    TEST_DATABASE_URL = urlunsplit(_parts._replace(path=f"/{_PG_DATABASE}"))
else:
    TEST_DATABASE_URL = f"sqlite:///{RUN_DIR}/portal.sqlite"

# Set before anything imports the engine (backend.piccolo_conf reads it once).
os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ["PORTAL_ENV"] = "development"
os.environ["SECRET_KEY"] = "test-secret-key-" + "x" * 32
os.environ["PORTAL_VAR_DIR"] = str(RUN_DIR / "var")
os.environ.pop("PORTAL_DEMO", None)
os.environ.pop("REDIS_URL", None)


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(_SERVER_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    from backend.cli import migrate

    if _PG_DATABASE:
        asyncio.run(_admin(f'CREATE DATABASE "{_PG_DATABASE}"'))
    asyncio.run(migrate())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _PG_DATABASE:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{_PG_DATABASE}" WITH (FORCE)'))


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL' if _PG_DATABASE else 'SQLite'} ({TEST_DATABASE_URL})"


@pytest.fixture
def settings(tmp_path: Path):
    from backend.config import load_settings

    # A var dir per test: sessions and sign-in counters start empty.
    return load_settings({**os.environ, "PORTAL_VAR_DIR": str(tmp_path / "var")})


@pytest.fixture
def app(settings):
    from backend.app import create_app

    return create_app(settings, db_pool=False)


@pytest.fixture
async def client(app) -> AsyncIterator:
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def other_client(app) -> AsyncIterator:
    """A second browser: another person, with cookies of their own."""
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app) as test_client:
        yield test_client
