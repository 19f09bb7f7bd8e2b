"""`db.fetch`, the read every signed-in page runs: with the process's pool (PostgreSQL) or kept
read connections (SQLite) it gives what Piccolo gives, sees every committed write at once, and
inside a transaction reads on that transaction's connection (issue 9: no stale balance)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from backend import db
from backend.services import agreements, clock, ledger
from backend.tables import Company, User
from tests.support import login, make_company

USER_BY_EMAIL = "SELECT * FROM portal_user WHERE email = {}"


@pytest.fixture
async def pooled() -> AsyncIterator[None]:
    engine = Company._meta.db
    await db.open_pool(engine, 4)
    try:
        yield
    finally:
        await db.close_pool(engine)


async def test_fetch_reads_what_piccolo_reads_with_and_without_the_pool():
    _, email = await make_company()
    [piccolo] = await User.raw(USER_BY_EMAIL, email)
    [without] = await db.fetch(User, USER_BY_EMAIL, email)
    assert dict(without) == piccolo
    engine = Company._meta.db
    await db.open_pool(engine, 4)
    try:
        [fetched] = await db.fetch(User, USER_BY_EMAIL, email)
    finally:
        await db.close_pool(engine)
    assert dict(fetched) == piccolo
    # Booleans and times come typed on both engines, not as SQLite's numbers and text.
    assert fetched["active"] is True
    assert fetched["created_at"] == piccolo["created_at"] and fetched["created_at"].tzinfo


async def test_a_pooled_read_sees_a_committed_write_at_once_and_its_own_transaction(pooled):
    _, email = await make_company()
    await User.update({User.name: "Ny Navn"}).where(User.email == email)
    [row] = await db.fetch(User, USER_BY_EMAIL, email)
    assert row["name"] == "Ny Navn"

    engine = Company._meta.db
    async with db.write_transaction(engine):
        await User.update({User.name: "Uten Commit"}).where(User.email == email)
        [inside] = await db.fetch(User, USER_BY_EMAIL, email)
        assert inside["name"] == "Uten Commit"
    [after] = await db.fetch(User, USER_BY_EMAIL, email)
    assert after["name"] == "Uten Commit"


async def test_the_served_dashboard_shows_a_debit_at_once(live_server):
    """Served for real (uvicorn, with the pool or kept read connections, as in production), the
    balance on the next page view after a debit is the new one."""
    company_id, email = await make_company("Ferske Tall AS")
    today = clock.today()
    await ledger.credit_lot(
        company_id=company_id,
        minutes=120,
        expires_on=agreements.add_years(today, 1),
        product_codes=["inventor"],
        key=f"fresh-credit-{company_id}",
        cause=ledger.Cause(type="order"),
    )
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as browser:
        assert (await login(browser, email)).status_code == 303
        page = await browser.get("/portal")
        assert '<p class="balance"><strong>2 t 0 min</strong>' in page.text
        await ledger.debit(
            company_id=company_id,
            minutes=45,
            on_date=today,
            key=f"fresh-debit-{company_id}",
            cause=ledger.Cause(type="adjustment"),
        )
        page = await browser.get("/portal")
        assert '<p class="balance"><strong>1 t 15 min</strong>' in page.text
