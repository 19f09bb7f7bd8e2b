"""Buying prepaid hours, in a real browser: the demo superuser tops up the time account with the
"5 timer" pack, pays on the payments sandbox's «Testmodus» page, comes back to the order page
(paid, hours added) and sees the new balance on the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    assert_no_console_errors,
    hours_minutes,
    nok_pattern,
    pay_on_sandbox,
    run_in_new_loop,
    sign_in,
    start_top_up,
)

pytestmark = pytest.mark.browser

DEMO_EMAIL = "superbruker@demo.no"
PACK_HOURS = 5

BALANCE = re.compile(r"^(\d+) t (\d+) min$")


async def seed_demo_and_read_hour_price() -> int:
    """The demo company, its people and catalog (idempotent); the prepaid hour price in øre."""
    from backend.services.demo import seed_demo
    from backend.tables import PriceList

    await seed_demo()
    prices = await PriceList.objects().first()
    assert prices is not None, "the demo seed left no price list"
    return prices.prepaid_hour_price_ore


def minutes_shown(text: str) -> int:
    """«5 t 30 min» -> 330."""
    match = BALANCE.match(text.strip())
    assert match, f"not a balance: {text!r}"
    return int(match[1]) * 60 + int(match[2])


def test_top_up_pay_in_sandbox_and_see_the_balance(
    page: Page, live_server: str, console_errors: list[str], screenshot_dir: Path
) -> None:
    from backend.services.demo import DEMO_PASSWORD
    from backend.services.money import mva_ore

    hour_price_ore = run_in_new_loop(seed_demo_and_read_hour_price())
    amount_ore = PACK_HOURS * hour_price_ore
    total_ore = amount_ore + mva_ore(amount_ore)
    main = page.locator("#main")

    # 1. Sign in as the demo superuser: the dashboard shows the balance before buying (other
    # tests may have used the demo company in this run, so it need not be empty).
    sign_in(page, live_server, DEMO_EMAIL, password=DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server}/portal")
    balance = page.locator("#time-account .balance strong")
    expect(balance).to_have_text(BALANCE)
    before = minutes_shown(balance.inner_text())

    # 2. The top-up page: the "5 timer" pack and at least one product.
    start_top_up(page, PACK_HOURS)

    # 3. The sandbox's hosted checkout page, clearly a test, with the total incl. MVA.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Testmodus")
    page.screenshot(path=screenshot_dir / "money-sandbox.png", full_page=True)

    # 4. Paid there, back on the order page: paid, and the hours are on the time account.
    status = pay_on_sandbox(page, total_ore)
    expect(status).to_contain_text(f"{hours_minutes(PACK_HOURS * 60)} lagt til på tidskontoen")
    expect(status).to_contain_text(nok_pattern(total_ore))

    # 5. The dashboard, through the main menu: the balance went up by exactly the pack.
    page.locator("header").get_by_role("link", name="Oversikt", exact=True).click()
    expect(page).to_have_url(f"{live_server}/portal")
    expect(main.locator("#time-account .balance strong")).to_have_text(
        hours_minutes(before + PACK_HOURS * 60)
    )
    page.screenshot(path=screenshot_dir / "money-dashboard.png", full_page=True)

    # 6. No console errors anywhere on the way (a CSP violation would be one).
    assert_no_console_errors(console_errors)
