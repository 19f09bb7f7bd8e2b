"""Update advisories end to end (issue 13), in Chromium: a technician publishes "Vent" for a
product the company's plan covers → its superuser sees it on the dashboard and gets the mail
→ opens a ticket about it in one click, product and subject filled in."""

from __future__ import annotations

import datetime
import re
import secrets
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, run_in_new_loop, sign_in
from tests.support import PASSWORD, make_company, new_email

pytestmark = pytest.mark.browser


async def seed() -> tuple[str, str]:
    from backend.services import clock
    from backend.services.catalog import seed_demo_catalog
    from backend.services.users import create_staff
    from backend.tables import Agreement, AgreementProduct

    await seed_demo_catalog()
    company_id, customer = await make_company(f"Rådreise {secrets.token_hex(3)} AS")
    today = clock.today()
    agreement = Agreement(
        company=company_id, starts_on=today, ends_on=today + datetime.timedelta(days=180)
    )
    await agreement.save()
    await AgreementProduct(agreement=agreement.id, product_code="inventor").save()
    technician = await create_staff(
        email=new_email("tekniker"), name="Tina Tekniker", role="technician", password=PASSWORD
    )
    return customer, technician.email


def wait_for_mail(smtp, address: str, count: int, seconds: float = 30) -> list[EmailMessage]:
    """The live portal's own sender delivers within seconds; a bounded wait for it."""
    deadline = time.monotonic() + seconds
    while len(found := smtp.messages_to(address)) < count:
        assert time.monotonic() < deadline, f"{count} mail(s) to {address} expected"
        time.sleep(0.2)
    return found


def test_a_published_wait_reaches_the_dashboard_and_the_mail_and_becomes_a_ticket(
    page: Page,
    staff_page: Page,
    live_server: str,
    console_errors: list[str],
    screenshot_dir: Path,
    smtp,
) -> None:
    customer, technician = run_in_new_loop(seed())
    title = f"Inventor 2027.1 Update {secrets.token_hex(3)}"

    sign_in(staff_page, live_server, technician)
    staff_page.goto("/staff/advisories")
    staff_page.get_by_role("button", name="Nytt oppdateringsråd").click()
    form = staff_page.locator("#advisory-new-form")
    form.get_by_label("Produkt").select_option(label="Autodesk Inventor")
    form.get_by_label("Versjon eller oppdatering (tittel)").fill(title)
    form.get_by_label("Vent", exact=True).check()
    form.get_by_label("Kort sammendrag").fill("Vent til Hotfix 1: iLogic-regler feiler.")
    form.get_by_label(re.compile("^Detaljer")).fill("Eksterne iLogic-regler feiler ved åpning.")
    form.get_by_role("button", name="Publiser rådet").click()
    expect(staff_page).to_have_url(re.compile(rf"{re.escape(live_server)}/staff/advisories/\d+$"))
    expect(staff_page.locator("#main h1")).to_have_text(title)
    expect(staff_page.locator("#advisory-history")).to_contain_text("Vent")

    sign_in(page, live_server, customer)
    region = page.locator("#advisories-summary")
    expect(region).to_contain_text(title)
    expect(region.locator(".verdict-wait").first).to_have_text("Vent")
    page.screenshot(path=screenshot_dir / "advisory-dashboard.png", full_page=True)

    [mail] = wait_for_mail(smtp, customer, 1)
    assert title in mail["Subject"] and "Vent" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert re.search(r"/portal/advisories/\d+", body)

    region.get_by_role("link", name=title).click()
    expect(page).to_have_url(re.compile(rf"{re.escape(live_server)}/portal/advisories/\d+$"))
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    expect(page.locator("#advisory-details")).to_contain_text("Eksterne iLogic-regler")
    page.get_by_role("button", name="Opprett sak om dette").click()
    ticket_form = page.locator("#ticket-form")
    expect(ticket_form.get_by_label("Produkt")).to_have_value("inventor")
    expect(ticket_form.get_by_label("Emne")).to_have_value(f"Oppdateringsråd: {title}")
    ticket_form.get_by_label("Beskrivelse").fill("Vi har installert den allerede. Hva nå?")
    ticket_form.get_by_role("button", name="Send saken").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server)}/portal/tickets/\d+$"))
    expect(page.get_by_role("heading", level=1, name=f"Oppdateringsråd: {title}")).to_be_visible()
    assert_no_console_errors(console_errors)
