"""Buying prepaid hours, in a real browser: the demo superuser tops up the time account with the
"5 timer" pack, pays on the payments sandbox's «Testmodus» page, comes back to the order page
(paid, hours added) and sees the new balance on the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, run_in_new_loop

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


def nok_pattern(amount_ore: int) -> re.Pattern[str]:
    """687500 -> a pattern for «6 875,00 kr», whichever spaces (often non-breaking) are used."""
    kroner, ore = divmod(amount_ore, 100)
    digits = r"\s?".join(re.escape(group) for group in f"{kroner:,}".split(","))
    return re.compile(rf"{digits},{ore:02d}\s*kr")


def minutes_shown(text: str) -> int:
    """«5 t 30 min» -> 330."""
    match = BALANCE.match(text.strip())
    assert match, f"not a balance: {text!r}"
    return int(match[1]) * 60 + int(match[2])


def shown(minutes: int) -> str:
    return f"{minutes // 60} t {minutes % 60} min"


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
    page.goto("/login")
    login_form = page.locator("#login-form")
    login_form.locator('[name="email"]').fill(DEMO_EMAIL)
    login_form.locator('[name="password"]').fill(DEMO_PASSWORD)
    login_form.get_by_role("button", name="Logg inn").click()
    expect(page).to_have_url(f"{live_server}/portal")
    balance = page.locator("#time-account .balance strong")
    expect(balance).to_have_text(BALANCE)
    before = minutes_shown(balance.inner_text())

    # 2. The top-up page: the "5 timer" pack and at least one product.
    page.goto("/portal/topup")
    form = page.locator("#topup-form")
    form.get_by_role("radio", name=re.compile(rf"^{PACK_HOURS} timer\b")).check()
    products = form.locator('input[type="checkbox"][name="products"]')
    expect(products.first).to_be_visible()
    if form.locator('input[type="checkbox"][name="products"]:checked').count() == 0:
        products.first.check()
    form.get_by_role("button", name="Gå til betaling").click()

    # 3. The sandbox's hosted checkout page, clearly a test, with the total incl. MVA.
    expect(page).to_have_url(re.compile(r"/sandbox/stripe/checkout/[^/?#]+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Testmodus")
    expect(page.get_by_role("heading", name=re.compile(r"^Betaling: "))).to_have_text(
        re.compile(rf"^Betaling: {nok_pattern(total_ore).pattern}$")
    )
    expect(page.locator("tfoot")).to_contain_text(nok_pattern(total_ore))
    page.screenshot(path=screenshot_dir / "money-sandbox.png", full_page=True)
    page.get_by_role(
        "button", name=re.compile(rf"^Betal {nok_pattern(total_ore).pattern}$")
    ).click()

    # 4. Back on the order page: paid, and the hours are on the time account. The page polls
    # (htmx, every 2 s) until the order is final, so allow for a webhook that comes later.
    expect(page).to_have_url(re.compile(r"/portal/orders/\d+\?session_id=cs_[^&#]+$"))
    status = page.locator("#order-status")
    expect(status).to_contain_text("Betalt", timeout=15_000)
    expect(status).to_contain_text(f"{shown(PACK_HOURS * 60)} lagt til på tidskontoen")
    expect(status).to_contain_text(nok_pattern(total_ore))

    # 5. The dashboard, through the main menu: the balance went up by exactly the pack.
    page.locator("header").get_by_role("link", name="Oversikt", exact=True).click()
    expect(page).to_have_url(f"{live_server}/portal")
    expect(main.locator("#time-account .balance strong")).to_have_text(
        shown(before + PACK_HOURS * 60)
    )
    page.screenshot(path=screenshot_dir / "money-dashboard.png", full_page=True)

    # 6. No console errors anywhere on the way (a CSP violation would be one).
    assert_no_console_errors(console_errors)
