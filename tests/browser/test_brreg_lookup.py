"""The registration form with Enhetsregisteret in a real browser (issue 11): leaving the
org.nr. fills the empty company fields, what the user writes meanwhile is kept, a bankrupt
company is told so, and the company registers with what the form shows. The register is the
stand-in on loopback (tests/brreg_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import _page_in_new_context
from tests.browser.support import assert_no_console_errors
from tests.brreg_server import entity
from tests.support import PASSWORD, new_email, new_org_number

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def looking_up_server(fake_register) -> Iterator[str]:
    """The portal served for real, looking organisation numbers up in the stand-in."""
    from tests.conftest import _serve

    yield from _serve(
        "backend.app:create_app",
        {"PORTAL_BASE_URL": "{base_url}", "BRREG_API_URL": fake_register.base_url},
    )


@pytest.fixture
def form_page(browser, looking_up_server: str, console_errors: list[str]) -> Iterator[Page]:
    with _page_in_new_context(browser, looking_up_server, console_errors) as new_page:
        new_page.goto("/register")
        assert new_page.evaluate("typeof window.htmx") == "object", "htmx did not load"
        yield new_page


def test_the_org_number_fills_the_form_and_the_company_registers(
    form_page: Page, fake_register, looking_up_server: str, console_errors: list[str]
) -> None:
    page = form_page
    number = new_org_number()
    fake_register.answer(number, body=entity(number, name="Fjordverktøy Nett AS"))

    page.get_by_label("Organisasjonsnummer").fill(number)
    page.get_by_label("Organisasjonsnummer").press("Tab")

    expect(page.get_by_label("Firmanavn")).to_have_value("Fjordverktøy Nett AS")
    expect(page.get_by_label("Adresse")).to_have_value("Haakon VIIs gate 9, Bygg C")
    expect(page.get_by_label("Postnummer")).to_have_value("7042")
    expect(page.get_by_label("Poststed")).to_have_value("TRONDHEIM")
    expect(page.get_by_role("status")).to_contain_text("Fylt inn fra Enhetsregisteret")

    page.get_by_label("Poststed").fill("Trondheim")  # the user may still change it
    page.get_by_label("Navn", exact=True).fill("Kari Nordmann")
    page.get_by_label("E-post").fill(new_email("brreg"))
    page.get_by_label("Telefon").fill("73 12 34 56")
    page.locator('[name="password"]').fill(PASSWORD)
    page.locator('[name="password_confirm"]').fill(PASSWORD)
    page.locator("#register-form").get_by_role("button", name="Registrer firma").click()

    expect(page).to_have_url(f"{looking_up_server}/portal")
    expect(page.locator("#main").get_by_role("heading", level=1)).to_have_text(
        "Fjordverktøy Nett AS"
    )
    assert_no_console_errors(console_errors)


def test_what_the_user_writes_while_the_register_answers_is_kept(
    form_page: Page, fake_register, console_errors: list[str]
) -> None:
    page = form_page
    number = new_org_number()
    fake_register.answer(number, delay=1.0)

    page.get_by_label("Organisasjonsnummer").fill(number)
    page.get_by_label("Organisasjonsnummer").press("Tab")
    page.get_by_label("Firmanavn").fill("Mitt Eget Navn AS")  # before the register answers

    expect(page.get_by_label("Adresse")).to_have_value("Haakon VIIs gate 9, Bygg C")
    expect(page.get_by_label("Firmanavn")).to_have_value("Mitt Eget Navn AS")
    assert_no_console_errors(console_errors)


def test_a_bankrupt_company_is_told_at_once(
    form_page: Page, fake_register, console_errors: list[str]
) -> None:
    page = form_page
    number = new_org_number()
    fake_register.answer(number, body=entity(number, konkurs=True))

    page.get_by_label("Organisasjonsnummer").fill(number)
    page.get_by_label("Organisasjonsnummer").press("Tab")

    error = page.locator('label[for="f-org_number"] .field-error')
    expect(error).to_have_text(
        "Firmaet er konkurs ifølge Enhetsregisteret og kan ikke registreres."
    )
    expect(page.get_by_label("Organisasjonsnummer")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Firmanavn")).to_have_value("")
    assert_no_console_errors(console_errors)
