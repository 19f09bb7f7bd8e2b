"""Automated accessibility checks with axe-core (WCAG 2.0/2.1 A and AA rules) on the pages a
company sees: the public pages, the registration form with its error messages, the portal after
registering, and the home page in English.

axe catches only part of what WCAG asks (no substitute for keyboard and screen-reader testing),
but what it reports is nearly always a real fault: contrast, labels, landmarks, ARIA."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import AXE_SCRIPT
from tests.support import PASSWORD, new_email, new_org_number

pytestmark = pytest.mark.browser

AXE_OPTIONS = {"runOnly": ["wcag2a", "wcag2aa"]}


def axe_violations(page: Page) -> list[dict]:
    """Runs axe-core on the page as it is now (injecting it first if this document lacks it)."""
    if page.evaluate("typeof window.axe") != "object":
        page.add_script_tag(path=AXE_SCRIPT)
    return page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)["violations"]


def report(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f"\n  {violation['helpUrl']}"
        )
        for node in violation["nodes"]:
            lines.append(f"    target: {node['target']}")
            lines.append(f"    html:   {node['html']}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n            ")
            if summary:
                lines.append(f"    why:    {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page, what: str) -> None:
    violations = axe_violations(page)
    assert not violations, (
        f"axe found {len(violations)} accessibility problem(s) on {what} ({page.url}):\n"
        + report(violations)
    )


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/advisories"])
def test_public_pages(axe_page: Page, path: str) -> None:
    axe_page.goto(path)
    expect(axe_page.locator("html")).to_have_attribute("lang", "nb")
    assert_accessible(axe_page, path)


def test_register_form_with_errors(axe_page: Page) -> None:
    page = axe_page
    page.goto("/register")
    form = page.locator("#register-form")
    form.locator('[name="company_name"]').fill("Feil Firma AS")
    form.locator('[name="org_number"]').fill("123")
    form.locator('[name="postal_code"]').fill("70")
    form.locator('[name="email"]').fill("ikke-en-adresse")
    # The browser's own validation would stop the submit before the server sees the mistakes.
    form.evaluate("form => { form.noValidate = true; }")
    form.get_by_role("button", name="Registrer firma").click()

    expect(form.get_by_role("alert")).to_be_visible()
    expect(form.locator('[name="org_number"]')).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".field-error").first).to_be_visible()
    assert_accessible(page, "/register with error messages")


def test_portal_pages_after_registering(axe_page: Page, live_server: str) -> None:
    page = axe_page
    company = f"Tilgjengelig Teknikk {secrets.token_hex(3)} AS"
    page.goto("/register")
    form = page.locator("#register-form")
    for name, value in {
        "company_name": company,
        "org_number": new_org_number(),
        "address": "Verkstedveien 12",
        "postal_code": "7030",
        "city": "Trondheim",
        "name": "Kari Nordmann",
        "email": new_email("axe"),
        "phone": "22 33 44 55",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }.items():
        form.locator(f'[name="{name}"]').fill(value)
    form.get_by_role("button", name="Registrer firma").click()

    expect(page).to_have_url(f"{live_server}/portal")
    expect(page.locator("#main").get_by_role("heading", level=1)).to_have_text(company)
    assert_accessible(page, "the dashboard")

    page.goto("/portal/company")
    expect(page.locator("#company-form")).to_be_visible()
    assert_accessible(page, "the company page")

    page.get_by_role("link", name="API-nøkler for firmaets egne systemer").click()
    page.get_by_label("Navn på nøkkelen").fill("Rapportserver")
    page.get_by_role("button", name="Lag nøkkel").click()
    expect(page.locator("#new-secret")).to_have_value(re.compile(r"^spt_"))
    page.locator("#api-tokens summary").first.click()
    expect(page.get_by_role("button", name="Ja, trekk tilbake nøkkelen")).to_be_visible()
    assert_accessible(page, "the API keys page with a new key")


def test_home_in_english(axe_page: Page) -> None:
    page = axe_page
    page.goto("/")
    page.locator("header").get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("header").get_by_role("link", name="Norsk")).to_be_visible()
    expect(page.locator("#main h1")).not_to_have_text(re.compile("Teknisk support"))
    assert_accessible(page, "/ in English")
