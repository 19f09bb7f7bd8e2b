"""A company's first visit, in a real browser with htmx: register (with a mistake first),
the dashboard, sign out, sign in, and boosted navigation that swaps only #main."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, sign_in
from tests.support import PASSWORD, new_email, new_org_number

pytestmark = pytest.mark.browser

HEADER_MARKER = "document.querySelector('header').dataset.marker"

# Chromium logs every 4xx/5xx response as a console error. One is expected on this journey:
# the form re-rendered with its messages (422, by design). Anything else - a CSP violation, a
# script error, a missing file, a 500 - fails the test.
EXPECTED_CONSOLE_ERRORS = (
    re.compile(r"^console: Failed to load resource: .* status of 422 .*\(\S+/register on "),
)


def spaced(org_number: str) -> str:
    """974760673 -> '974 760 673'."""
    return f"{org_number[:3]} {org_number[3:6]} {org_number[6:]}"


def test_register_sign_out_sign_in_and_navigate(
    page: Page, live_server: str, console_errors: list[str], screenshot_dir: Path
) -> None:
    company = f"Reise Verktøy {secrets.token_hex(3)} AS"
    org_number = new_org_number()
    email = new_email("reise")

    # 1. Register: first with a bad org number and passwords that differ.
    page.goto("/register")
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
    form = page.locator("#register-form")

    def fill(name: str, value: str) -> None:
        form.locator(f'[name="{name}"]').fill(value)

    page.get_by_label("Firmanavn").fill(company)
    fill("org_number", "123")
    fill("address", "Verkstedveien 12")
    fill("postal_code", "7030")
    fill("city", "Trondheim")
    fill("name", "Kari Nordmann")
    fill("email", email)
    fill("phone", "22 33 44 55")
    fill("password", PASSWORD)
    fill("password_confirm", PASSWORD + "-ikke-lik")
    page.evaluate(f"{HEADER_MARKER} = 'register'")
    form.get_by_role("button", name="Registrer firma").click()

    org_error = form.locator('label[for="f-org_number"] .field-error')
    confirm_error = form.locator('label[for="f-password_confirm"] .field-error')
    expect(org_error).to_contain_text("Ugyldig organisasjonsnummer")
    expect(confirm_error).to_contain_text("Passordene er ikke like")
    expect(form.locator('[name="org_number"]')).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Firmanavn")).to_have_value(company)
    expect(page).to_have_url(f"{live_server}/register")
    # htmx swapped the form in place: the rest of the page is the same document.
    assert page.evaluate(HEADER_MARKER) == "register"
    page.screenshot(path=screenshot_dir / "register-errors.png", full_page=True)

    # Fix the mistakes (passwords are never sent back, so both are typed again).
    fill("org_number", org_number)
    fill("password", PASSWORD)
    fill("password_confirm", PASSWORD)
    form.get_by_role("button", name="Registrer firma").click()

    # 2. The new superuser is signed in and sees the company's dashboard.
    expect(page).to_have_url(f"{live_server}/portal")
    main = page.locator("#main")
    expect(main.get_by_role("heading", level=1)).to_have_text(company)
    expect(main).to_contain_text("Ingen avtale ennå")

    # 3. Sign out from the header.
    page.locator("header").get_by_role("button", name="Logg ut").click()
    expect(page).to_have_url(f"{live_server}/")
    expect(page.locator("header").get_by_role("link", name="Logg inn")).to_be_visible()
    expect(page.locator("header").get_by_role("button", name="Logg ut")).to_have_count(0)

    # 4. Sign in again.
    sign_in(page, live_server, email)
    expect(page).to_have_url(f"{live_server}/portal")
    expect(main.get_by_role("heading", level=1)).to_have_text(company)
    expect(main).to_contain_text("Ingen avtale ennå")

    # 5. A picture of the dashboard.
    page.screenshot(path=screenshot_dir / "journey-dashboard.png", full_page=True)

    # 6. Boosted navigation: only #main is swapped, the header stays the same node.
    page.evaluate(f"{HEADER_MARKER} = 'x'")
    page.locator("header").get_by_role("link", name="Firma", exact=True).click()
    expect(page).to_have_url(f"{live_server}/portal/company")
    expect(main).to_contain_text(f"Org.nr. {spaced(org_number)}")
    expect(main.get_by_role("heading", level=1)).to_have_text(company)
    expect(page).to_have_title(re.compile(r"^Firma · "))
    assert page.evaluate(HEADER_MARKER) == "x", "the header was replaced: not a boosted swap"

    # 7. No console errors anywhere on the way (a CSP violation would be one).
    assert_no_console_errors(console_errors, EXPECTED_CONSOLE_ERRORS)
