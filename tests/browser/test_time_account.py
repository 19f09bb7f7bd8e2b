"""The time account in a real browser: the menu's "Tidskonto" opens the account page (balance
with its bar, the open lot, the used-up one folded away), which passes axe-core; its top-up
button opens the form, where the last of a pack and a typed number of hours wins, visibly."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, run_in_new_loop, sign_in
from tests.browser.test_accessibility import assert_accessible

pytestmark = pytest.mark.browser


async def company_with_lots() -> str:
    """A company with 1 t 30 min left of a 2-hour lot and a used-up lot; its superuser's e-mail."""
    from backend.services import catalog, clock, ledger
    from tests.support import make_company

    await catalog.seed_demo_catalog()
    company_id, email = await make_company("Konto i Nettleser AS")
    expires_on = clock.today() + datetime.timedelta(days=200)
    for minutes, key in ((120, "open"), (60, "used")):
        await ledger.credit_lot(
            company_id=company_id,
            minutes=minutes,
            expires_on=expires_on + datetime.timedelta(days=minutes),
            product_codes=["inventor"],
            key=f"browser-{key}-{company_id}",
            cause=ledger.Cause(type="order"),
        )
    from backend.services.money import mva_ore
    from backend.tables import Order, User

    superuser = await User.objects().get(User.email == email)
    await Order(
        company=company_id,
        created_by=superuser.id,
        kind="topup",
        status="paid",
        hours=2,
        product_codes="inventor",
        amount_ore=220_000,
        mva_ore=mva_ore(220_000),
        total_ore=220_000 + mva_ore(220_000),
        paid_at=clock.now(),
    ).save()
    # 90 minutes: first the lot that expires first (the 60), then 30 of the 120.
    await ledger.debit(
        company_id=company_id,
        minutes=90,
        on_date=clock.today(),
        key=f"browser-debit-{company_id}",
        cause=ledger.Cause(type="admin", note="Test"),
    )
    return email


def test_the_account_page_and_the_topup_hours(
    axe_page: Page, live_server: str, console_errors: list[str]
) -> None:
    page = axe_page
    email = run_in_new_loop(company_with_lots())
    sign_in(page, live_server, email)

    page.locator("header").get_by_role("link", name="Tidskonto").click()
    expect(page).to_have_url(f"{live_server}/portal/account")
    expect(page.locator("#account-balance .balance strong")).to_have_text("1 t 30 min")
    expect(page.locator("#account-balance progress")).to_have_attribute("max", "120")
    expect(page.locator("#open-lots tbody tr")).to_have_count(1)
    folded = page.locator("#closed-lots")
    expect(folded.locator("table")).not_to_be_visible()
    folded.locator("summary").click()
    expect(folded.locator("table")).to_be_visible()
    expect(folded).to_contain_text("brukt opp")
    assert_accessible(page, "the time account page")

    page.locator("#main").get_by_role("button", name="Fyll på tidskontoen").click()
    expect(page).to_have_url(f"{live_server}/portal/topup")
    topup = page.locator("#topup-form")
    pack = topup.get_by_role("radio", name="5 timer")
    other = topup.get_by_label("Eller et annet antall hele timer (1–200)")
    expect(pack).to_be_checked()
    other.fill("7")
    expect(pack).not_to_be_checked()
    # The price follows: 7 hours at the demo's 1 100 kr, and 25 % MVA.
    expect(topup.locator("#price-preview")).to_contain_text(re.compile(r"9\s625,00\skr"))
    expect(topup.locator('input[type="radio"][name="hours"]:checked')).to_have_count(0)
    topup.get_by_role("radio", name="10 timer").check()
    expect(other).to_have_value("")
    assert_accessible(page, "the top-up page")
    assert_no_console_errors(console_errors)


def test_the_statement_filters_in_place_and_downloads_the_csv(
    axe_page: Page, live_server: str, console_errors: list[str]
) -> None:
    page = axe_page
    email = run_in_new_loop(company_with_lots())
    sign_in(page, live_server, email)

    page.locator("header").get_by_role("link", name="Forbruk").click()
    expect(page).to_have_url(f"{live_server}/portal/usage")
    expect(page.locator("#usage-chart svg title").first).to_have_text(
        "Support per måned, siste 12 måneder"
    )
    expect(page.locator("#usage-rows tr")).to_have_count(3)
    assert_accessible(page, "the usage statement")

    # The filter form swaps only the rows (the chart stays) and the address keeps the filter.
    chart = page.locator("#usage-chart").element_handle()
    page.locator("#f-product").select_option("fusion")
    page.locator("#usage-filter").get_by_role("button", name="Vis").click()
    expect(page).to_have_url(
        f"{live_server}/portal/usage?period=last_12_months&from=&to=&product=fusion"
    )
    expect(page.locator("#usage-region")).to_contain_text("Ingenting i denne perioden.")
    assert chart is not None and chart.evaluate("node => node.isConnected")

    page.locator("#f-product").select_option("")
    page.locator("#usage-filter").get_by_role("button", name="Vis").click()
    expect(page.locator("#usage-rows tr")).to_have_count(3)
    with page.expect_download() as download:
        page.get_by_role("link", name="Last ned som CSV").click()
    content = Path(download.value.path()).read_bytes()
    assert content.startswith(b"\xef\xbb\xbf") and content.count(b"\r\n") == 4

    page.goto("/portal")
    page.locator("#main").get_by_role("link", name="Alle bestillinger").click()
    expect(page).to_have_url(f"{live_server}/portal/orders")
    assert_accessible(page, "the order history")
    page.locator("#order-history").get_by_role("link", name="Kvittering").click()
    expect(page.locator(".receipt h1")).to_have_text("Kvittering")
    assert_accessible(page, "the receipt")
    assert_no_console_errors(console_errors)
