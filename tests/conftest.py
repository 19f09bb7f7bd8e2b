"""Every test run gets its own fresh database: a temporary SQLite file by default, or a new
PostgreSQL database on the server DATABASE_URL points to (dropped at the end)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
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
# argon2 at its cheapest in this process and the portals it serves (never in production).
os.environ["PORTAL_CHEAP_HASHING"] = "1"
# A developer's shell may hold real Stripe settings: tests use the sandbox unless they say so.
for _name in (
    "PORTAL_DEMO",
    "REDIS_URL",
    # Served portals believe no forwarded address unless a test names a proxy.
    "FORWARDED_ALLOW_IPS",
    "PORTAL_BASE_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "MAIL_FROM",
    "MAIL_DIR",
    "ATTACHMENT_DIR",
    # Tests look organisation numbers up only in tests/brreg_server.py, never on the internet.
    "BRREG_API_URL",
    # Tests start their own mail receivers, on ports of their own.
    "INBOUND_SMTP_PORT",
    "INBOUND_SMTP_HOST",
):
    os.environ.pop(_name, None)


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(_SERVER_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


_smtp: Any = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _smtp
    from backend.cli import migrate
    from tests import smtp_server

    # Before any portal is served: every sender of the run delivers to this one server.
    _smtp = smtp_server.start()
    os.environ["SMTP_URL"] = _smtp[2]
    if _PG_DATABASE:
        asyncio.run(_admin(f'CREATE DATABASE "{_PG_DATABASE}"'))
    asyncio.run(migrate())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _smtp is not None:
        _smtp[0].stop()
    if _PG_DATABASE:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{_PG_DATABASE}" WITH (FORCE)'))


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL' if _PG_DATABASE else 'SQLite'} ({TEST_DATABASE_URL})"


def _run_to_the_end(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run, on a thread of its own while this thread's loop is marked as running (the
    browser tests' Playwright keeps it so between calls)."""
    if asyncio._get_running_loop() is None:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, coroutine).result(timeout=60)


@pytest.fixture
def smtp() -> Any:
    """The run's SMTP server (tests/smtp_server.py): what it was sent, by recipient."""
    return _smtp[1]


@pytest.fixture(autouse=True)
def _fresh_sign_in_counters() -> None:
    """Sign-in counters live in the run's database: every test starts with none, so one
    test's failed sign-ins from an address do not throttle the next test's."""
    from backend.tables import SignInCounter

    _run_to_the_end(SignInCounter.delete(force=True).run())


@pytest.fixture
def settings(tmp_path: Path):
    from backend.config import load_settings

    # A var dir per test: sessions and rate limits start empty.
    return load_settings({**os.environ, "PORTAL_VAR_DIR": str(tmp_path / "var")})


@pytest.fixture
def app(settings):
    from backend.app import create_app

    return create_app(settings, db_pool=False, background_jobs=False)


@pytest.fixture
async def client(app) -> AsyncIterator:
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def fake_register() -> Iterator[Any]:
    """Enhetsregisteret's stand-in on loopback (tests/brreg_server.py)."""
    from tests.brreg_server import FakeRegister

    register = FakeRegister().start()
    yield register
    register.stop()


@pytest.fixture
async def register_client(settings, fake_register) -> AsyncIterator:
    """A browser on a portal that looks organisation numbers up in `fake_register`."""
    import dataclasses

    from litestar.testing import AsyncTestClient

    from backend.app import create_app

    looking_up = dataclasses.replace(settings, brreg_api_url=fake_register.base_url)
    app = create_app(looking_up, db_pool=False, background_jobs=False)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def other_client(app) -> AsyncIterator:
    """A second browser: another person, with cookies of their own."""
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(app: str, extra_env: dict[str, str]) -> Iterator[str]:
    """Serve `app` (an app factory) on a free port until the run ends, the way production
    does: `portal serve` (uvicorn, forwarded addresses only from FORWARDED_ALLOW_IPS)."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    run_dir = Path(tempfile.mkdtemp(prefix="portal-live-"))
    env = {
        **os.environ,
        "PORTAL_VAR_DIR": str(run_dir / "var"),
        "PORT": str(port),
        **{k: v.replace("{base_url}", base_url) for k, v in extra_env.items()},
    }
    portal = Path(sys.executable).with_name("portal")
    log_path = run_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(portal), "serve", "--app", app, "--host", "127.0.0.1", "--port", str(port)],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{app} did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """The portal served for real by uvicorn (with its payments sandbox, as under `make run`),
    on this run's database, in a var dir of its own."""
    yield from _serve("backend.app:create_app", {"PORTAL_BASE_URL": "{base_url}"})


@pytest.fixture(scope="session")
def real_hashing_server() -> Iterator[str]:
    """The portal served with argon2's real parameters, for tests about what hashing costs."""
    yield from _serve(
        "backend.app:create_app", {"PORTAL_BASE_URL": "{base_url}", "PORTAL_CHEAP_HASHING": "0"}
    )


@pytest.fixture(scope="session")
def twin_server() -> Iterator[str]:
    """A second portal process on the same database as `live_server` (SPEC §5: the ledger
    holds across processes), with a var dir, sessions and sandbox of its own."""
    yield from _serve("backend.app:create_app", {"PORTAL_BASE_URL": "{base_url}"})


@pytest.fixture(scope="session")
def sandbox_key() -> str:
    """The key the live server's sandbox accepts: derived from SECRET_KEY, as in development."""
    from backend.config import load_settings

    return load_settings(dict(os.environ)).stripe_secret_key


@pytest.fixture(scope="session")
def proxied_server() -> Iterator[str]:
    """The portal served as behind a reverse proxy on this machine (FORWARDED_ALLOW_IPS)."""
    yield from _serve(
        "backend.app:create_app",
        {"PORTAL_BASE_URL": "{base_url}", "FORWARDED_ALLOW_IPS": "127.0.0.1"},
    )


HELD_WEBHOOK_SECRET = "whsec_held_back_for_tests"
HELD_SECRET_KEY = "sk_test_held_back_for_tests"
# The portal address tests give a portal that uses the silent sandbox (PORTAL_BASE_URL): its
# sessions may return browsers only there.
HELD_PORTAL_URL = "http://portal.test"


@pytest.fixture(scope="session")
def silent_sandbox() -> Iterator[str]:
    """A sandbox alone whose webhooks go nowhere (a closed port): tests then deliver events
    themselves, when they choose. Its key is HELD_SECRET_KEY; its sessions return to
    HELD_PORTAL_URL."""
    yield from _serve(
        "tests.sandbox_server:create_app",
        {
            "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{_free_port()}/nobody",
            "SANDBOX_WEBHOOK_SECRET": HELD_WEBHOOK_SECRET,
            "SANDBOX_PUBLIC_URL": "{base_url}",
            "SANDBOX_SECRET_KEY": HELD_SECRET_KEY,
            "SANDBOX_ALLOWED_ORIGINS": HELD_PORTAL_URL,
        },
    )


@pytest.fixture
async def person(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in superuser of a fresh company, as a browser without JavaScript."""
    from backend.services import catalog
    from tests.support import PASSWORD, csrf_token, make_company

    await catalog.seed_demo_catalog()
    _, email = await make_company()
    async with httpx.AsyncClient(base_url=live_server, timeout=20) as client:
        token = await csrf_token(client, "/login")
        response = await client.post(
            "/login", data={"email": email, "password": PASSWORD, "_csrf_token": token}
        )
        assert response.status_code == 303
        yield client
