"""The dashboard's regions refresh themselves in a real browser (htmx under the portal's CSP):
on `balance-changed` the time account shows minutes credited since the page was loaded, and
when the tab is shown again (a payment completed in another tab) so do the open tickets — the
page itself is not reloaded."""

from __future__ import annotations

import datetime

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    assert_no_console_errors,
    pay_on_sandbox,
    run_in_new_loop,
    start_top_up,
)
from tests.browser.test_time_account import sign_in

pytestmark = pytest.mark.browser


async def company_with_a_lot() -> tuple[int, str]:
    from backend.services import catalog
    from tests.support import make_company

    await catalog.seed_demo_catalog()
    company_id, email = await make_company("Oppdaterer Seg Selv AS")
    await credit(company_id, 120, "first")
    return company_id, email


async def credit(company_id: int, minutes: int, key: str) -> None:
    from backend.services import clock, ledger

    await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=clock.today() + datetime.timedelta(days=200),
        product_codes=["inventor"],
        key=f"refresh-{key}-{company_id}",
        cause=ledger.Cause(type="order"),
    )


async def open_ticket(company_id: int) -> str:
    from tests.support import make_ticket

    return (await make_ticket(company_id, "Betalt i en annen fane")).subject


def test_the_regions_refresh_on_their_events_without_reloading_the_page(
    page: Page, live_server: str, console_errors: list[str]
) -> None:
    company_id, email = run_in_new_loop(company_with_a_lot())
    sign_in(page, live_server, email)
    balance = page.locator("#time-account .balance strong")
    expect(balance).to_have_text("2 t 0 min")
    page.evaluate("window.notReloaded = true")

    run_in_new_loop(credit(company_id, 60, "second"))
    page.evaluate("htmx.trigger(document.body, 'balance-changed')")
    expect(balance).to_have_text("3 t 0 min")

    subject = run_in_new_loop(open_ticket(company_id))
    expect(page.locator("#open-tickets")).not_to_contain_text(subject)
    # The tab shown again: what app.js does on `visibilitychange` when the page is visible.
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#open-tickets")).to_contain_text(subject)
    assert page.evaluate("window.notReloaded") is True
    # The regions were replaced, not nested inside themselves.
    assert page.locator("#time-account").count() == 1
    assert page.locator("#open-tickets").count() == 1
    assert_no_console_errors(console_errors)


async def pending_order_and_hour_price(company_id: int) -> tuple[int, int]:
    """The company's newest order (placed, not paid yet) and the prepaid hour's price in øre."""
    from backend.tables import Order, PriceList

    order = (
        await Order.objects()
        .where(Order.company == company_id)
        .order_by(Order.id, ascending=False)
        .first()
    )
    prices = await PriceList.objects().first()
    assert order is not None and order.status == "pending" and prices is not None
    return order.id, prices.prepaid_hour_price_ore


def test_a_payment_confirmed_in_another_tab_refreshes_the_dashboard(
    page: Page, live_server: str, console_errors: list[str]
) -> None:
    from backend.services.money import mva_ore

    company_id, email = run_in_new_loop(company_with_a_lot())
    sign_in(page, live_server, email)
    balance = page.locator("#time-account .balance strong")
    expect(balance).to_have_text("2 t 0 min")
    page.evaluate("window.notReloaded = true")

    # A second tab pays a pack of 5 hours; a third has the order's page open, waiting on it.
    paying = page.context.new_page()
    start_top_up(paying, 5)
    order_id, hour_price_ore = run_in_new_loop(pending_order_and_hour_price(company_id))
    waiting = page.context.new_page()
    waiting.goto(f"/portal/orders/{order_id}")
    expect(waiting.locator("#order-status")).not_to_contain_text("Betalt")
    pay_on_sandbox(paying, 5 * hour_price_ore + mva_ore(5 * hour_price_ore))
    expect(waiting.locator("#order-status")).to_contain_text("Betalt", timeout=15_000)

    # The first tab was neither shown again nor reloaded: the waiting tab's status poll
    # announced balance-changed, and the dashboard heard it from there.
    expect(balance).to_have_text("7 t 0 min")
    assert page.evaluate("window.notReloaded") is True
    assert_no_console_errors(console_errors)
