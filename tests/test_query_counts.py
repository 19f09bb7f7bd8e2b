"""What the busiest pages cost (issue 9). SQL statements: a fixed number per page, the same
for a company with one ticket as for one with years of history, on SQLite and PostgreSQL (a
new query on one of these pages must be a decision: change the number here, not an accident).
Session writes: none on a page view until the session's expiry is due for renewal.
"""

from __future__ import annotations

import asyncio
import datetime
from contextlib import AsyncExitStack

from litestar.testing import AsyncTestClient

from backend.controllers.portal import DASHBOARD_REGIONS
from backend.services import catalog
from backend.services.users import create_staff
from backend.tables import BrowserSession, Company, Ticket, User
from tests.bench_seed import BENCH_PASSWORD, history
from tests.sql_counter import statements_of
from tests.support import PASSWORD, login, new_email, new_org_number, register

# The session and its signed-in user are one statement of each. Before issue 9: dashboard 12,
# ticket list 5, ticket page 5, top-up 6, staff queue 6 (and the session in another store).
PINNED = {
    "dashboard": 2,  # the session with its user; the company with all its regions
    "ticket list": 2,  # the session with its user; the page with its count and the catalog
    # The session with its user; the ticket; its thread; its attachments; its product; its time;
    # and how support on it is paid: the plan's and the account's products, and the hourly rate.
    "ticket page": 9,
    "top-up": 2,  # the session with its user; the open lots and the catalog
    "time account": 2,  # the session with its user; the lots, latest entries and products
    "statement": 3,  # the session with its user; a page of rows with balances; the catalog
    "orders": 2,  # the session with its user; a page of orders with the catalog's names
    # The customer API, signed in (a token's statement, with its user, stands for the session).
    "api account": 2,  # the session with its user; the company with all its regions
    "api tickets": 2,  # the session with its user; the page with its count and the catalog
    "api ticket": 5,  # the session with its user; the ticket; its thread; its time; its product
    "api usage": 2,  # the session with its user; a page of rows with balances
    "password": 1,  # the session with its user, nothing else
}
# A dashboard region asked for alone (it refreshes itself): the session with its user; the
# company with all its regions, as the whole page reads it.
DASHBOARD_REGION = 2
STAFF_QUEUE = 3  # the session with its user; the page with its count and the catalog; companies


async def _company_pages(client: AsyncTestClient, company_id: int) -> dict[str, str]:
    latest = (
        await Ticket.select(Ticket.id)
        .where(Ticket.company == company_id)
        .order_by(Ticket.id, ascending=False)
        .first()
    )
    return {
        "dashboard": "/portal",
        "ticket list": "/portal/tickets",
        "ticket page": f"/portal/tickets/{latest['id']}",
        "top-up": "/portal/topup",
        "time account": "/portal/account",
        "statement": "/portal/usage",
        "orders": "/portal/orders",
        "api account": "/api/v1/account",
        "api tickets": "/api/v1/tickets",
        "api ticket": f"/api/v1/tickets/{latest['id']}",
        "api usage": "/api/v1/usage",
        "password": "/account/password",
    }


async def _counts(client: AsyncTestClient, company_id: int, monkeypatch) -> dict[str, int]:
    pages = await _company_pages(client, company_id)
    counts = {
        label: len(await statements_of(client, path, monkeypatch)) for label, path in pages.items()
    }
    for region in DASHBOARD_REGIONS:
        asked = {"HX-Request": "true", "HX-Target": region}
        statements = await statements_of(client, "/portal", monkeypatch, headers=asked)
        counts[f"dashboard region {region}"] = len(statements)
    return counts


async def _signed_in(browsers: AsyncExitStack, app, email: str, password: str) -> AsyncTestClient:
    client = await browsers.enter_async_context(AsyncTestClient(app=app))
    response = await login(client, email, password)
    assert response.status_code == 303, response.text
    return client


async def test_each_page_costs_the_same_statements_whatever_the_history(app, monkeypatch):
    await catalog.seed_demo_catalog()
    little_email, much_email = new_email("lite"), new_email("mye")
    little = await history(1, years=0, email=little_email, org_number=new_org_number())
    staff_email = new_email("tekniker")
    await create_staff(email=staff_email, name="Tekniker", role="technician", password=PASSWORD)
    async with AsyncExitStack() as browsers:
        staff = await _signed_in(browsers, app, staff_email, PASSWORD)
        little_client = await _signed_in(browsers, app, little_email, BENCH_PASSWORD)
        queue_with_little = len(await statements_of(staff, "/staff", monkeypatch))
        much = await history(30, years=5, email=much_email, org_number=new_org_number())
        much_client = await _signed_in(browsers, app, much_email, BENCH_PASSWORD)
        queue_with_much = len(await statements_of(staff, "/staff", monkeypatch))

        little_counts = await _counts(little_client, little, monkeypatch)
        much_counts = await _counts(much_client, much, monkeypatch)

    assert little_counts == much_counts, "a page's statements grow with the company's history"
    assert queue_with_little == queue_with_much, "the queue's statements grow with the tickets"
    regions = {f"dashboard region {region}": DASHBOARD_REGION for region in DASHBOARD_REGIONS}
    assert little_counts == {**PINNED, **regions}
    assert queue_with_much == STAFF_QUEUE


async def test_a_page_view_writes_no_session_until_its_expiry_is_due(client, monkeypatch):
    """The session is read once per request (with its user) and written only when it changed
    or its expiry is due for renewal (an eighth of its lifetime), and then the cookie too."""
    import time

    from backend.app import SESSION_MAX_AGE
    from backend.web import sessions

    form = await register(client)
    sid = client.cookies.get("session")

    async def expires_at() -> int:
        row = await BrowserSession.select(BrowserSession.expires_at).where(BrowserSession.id == sid)
        return row[0]["expires_at"]

    stored = await expires_at()
    soon = time.time() + 60
    monkeypatch.setattr(sessions.time, "time", lambda: soon)
    page = await client.get("/portal")
    assert form["company_name"] in page.text
    assert "session" not in page.headers.get("set-cookie", "")
    assert await expires_at() == stored

    later = time.time() + SESSION_MAX_AGE / sessions.RENEW_FRACTION + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    page = await client.get("/portal")
    assert form["company_name"] in page.text
    assert f"session={sid}" in page.headers.get("set-cookie", "")
    assert await expires_at() == int(later) + SESSION_MAX_AGE
    # Renewed, it is fresh again.
    page = await client.get("/portal")
    assert "session" not in page.headers.get("set-cookie", "")


async def _lots(company_id: int) -> None:
    from backend.services import agreements, clock, ledger

    today = clock.today()
    for minutes, expires_on, key in (
        (120, today - datetime.timedelta(days=1), "old"),
        (60, agreements.add_years(today, 1), "new"),
    ):
        await ledger.credit_lot(
            company_id=company_id,
            minutes=minutes,
            expires_on=expires_on,
            product_codes=["inventor"],
            key=f"{key}{company_id}",
            cause=ledger.Cause(type="order"),
        )


async def test_a_page_view_writes_nothing_and_counts_no_expired_lot(client, monkeypatch):
    """An expired lot the sweep has not written off yet counts for nothing on the dashboard,
    and showing it writes nothing (a page view used to run the expiry pass, on a GET)."""
    from backend.tables import LedgerEntry

    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = (await Company.select(Company.id).where(Company.name == form["company_name"]))[-1][
        "id"
    ]
    await _lots(company_id)
    for path in ("/portal", "/portal/topup", "/portal/tickets"):
        statements = await statements_of(client, path, monkeypatch)
        assert all(s.lstrip().upper().startswith("SELECT") for s in statements), statements
    page = await client.get("/portal")
    assert '<p class="balance"><strong>1 t 0 min</strong>' in page.text
    kinds = await LedgerEntry.select(LedgerEntry.kind).where(LedgerEntry.company == company_id)
    assert [k["kind"] for k in kinds] == ["credit", "credit"]


async def test_every_instance_sweeps_expired_lots_at_start_production_too(tmp_path):
    """The periodic expiry task runs in every instance, production included."""
    import os

    from backend.app import create_app
    from backend.config import load_settings
    from backend.services import clock, ledger
    from tests.support import PRODUCTION_ENV, make_company

    company_id, _ = await make_company()
    await _lots(company_id)
    settings = load_settings({**os.environ, **PRODUCTION_ENV, "PORTAL_VAR_DIR": str(tmp_path)})
    app = create_app(settings, db_pool=False)
    async with AsyncTestClient(app=app, base_url="https://portal.example") as served:
        # The sweep is a task of its own: wait (bounded) until it has written the lot off.
        for _ in range(200):
            if sum((await ledger.entries_sum_by_lot(company_id)).values()) == 60:
                break
            await served.get("/healthz")
            await asyncio.sleep(0.05)
    assert sum((await ledger.entries_sum_by_lot(company_id)).values()) == 60
    assert await ledger.balance(company_id, clock.today()) == 60


async def test_a_token_costs_what_a_session_does_and_notes_its_use_once_a_minute(
    client, monkeypatch
):
    """Under /api/ the token with its user is one statement, as the session with its user is;
    its last use is written on the first request and then at most once a minute."""
    from backend.services import api_tokens, clock
    from tests.support import make_company

    company_id, email = await make_company()
    await login(client, email)
    superuser = await User.objects().get(User.email == email)
    _, secret = await api_tokens.create_token(superuser, {"name": "Telling"})
    async with AsyncTestClient(app=client.app) as system:
        system.headers["Authorization"] = f"Bearer {secret}"
        first = await statements_of(system, "/api/v1/account", monkeypatch)
        again = await statements_of(system, "/api/v1/account", monkeypatch)
        later = clock.now() + datetime.timedelta(minutes=2)
        monkeypatch.setattr(clock, "now", lambda: later)
        due = await statements_of(system, "/api/v1/account", monkeypatch)
    by_session = await statements_of(client, "/api/v1/account", monkeypatch)

    assert len(again) == len(by_session) == PINNED["api account"]
    assert len(first) == len(due) == PINNED["api account"] + 1
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in due) == 1
    assert company_id == superuser.company
