"""An abandoned checkout, in a real browser (issue 8): the customer cancels on the sandbox's
hosted page, lands on the order page, pays again ("Betal": a new session), cancels again, and
then cancels the order ("Avbryt bestillingen"). The order page stays accessible (axe)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    HOSTED_CHECKOUT,
    assert_no_console_errors,
    run_in_new_loop,
    sign_in,
    start_top_up,
)
from tests.browser.test_accessibility import assert_accessible
from tests.browser.test_money_journey import DEMO_EMAIL, seed_demo_and_read_hour_price

pytestmark = pytest.mark.browser

ORDER = re.compile(r"/portal/orders/\d+$")


def test_an_abandoned_checkout_can_be_paid_again_or_cancelled(
    axe_page: Page, live_server: str, console_errors: list[str], screenshot_dir: Path
) -> None:
    from backend.services.demo import DEMO_PASSWORD

    page = axe_page
    run_in_new_loop(seed_demo_and_read_hour_price())
    sign_in(page, live_server, DEMO_EMAIL, password=DEMO_PASSWORD)
    start_top_up(page, 5)
    first_session = HOSTED_CHECKOUT.search(page.url)[1]

    # Cancelled on the hosted page: back on the order page, which offers both ways on.
    page.get_by_role("button", name="Avbryt", exact=True).click()
    expect(page).to_have_url(ORDER)
    status = page.locator("#order-status")
    expect(status).to_contain_text("Venter på betaling")
    expect(status.get_by_role("link", name="Sjekk status")).to_be_visible()
    expect(status).not_to_contain_text("oppdateres av seg selv")
    page.screenshot(path=screenshot_dir / "order-abandoned.png", full_page=True)
    assert_accessible(page, "an abandoned order")

    # "Betal": a new session for the same order.
    status.get_by_role("button", name="Betal", exact=True).click()
    expect(page).to_have_url(HOSTED_CHECKOUT)
    assert HOSTED_CHECKOUT.search(page.url)[1] != first_session
    page.get_by_role("button", name="Avbryt", exact=True).click()
    expect(page).to_have_url(ORDER)

    # "Avbryt bestillingen": the order can no longer be paid, and says how to order again.
    page.locator("#order-status").get_by_role("button", name="Avbryt bestillingen").click()
    status = page.locator("#order-status")
    expect(status).to_contain_text("Avbrutt")
    expect(status.get_by_role("link", name="Bestill på nytt")).to_have_attribute(
        "href", "/portal/topup"
    )
    expect(status.get_by_role("button", name="Betal", exact=True)).to_have_count(0)
    page.screenshot(path=screenshot_dir / "order-cancelled.png", full_page=True)
    assert_no_console_errors(console_errors)
