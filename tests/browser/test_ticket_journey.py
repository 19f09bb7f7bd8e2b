"""A ticket from both sides, in two real browsers: a superuser opens a ticket for Inventor, a
technician finds it in the queue and logs 20 minutes by phone (billed 30), and the customer
then sees the 30 minutes taken from the time account, on the ticket and on the dashboard."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    assert_no_console_errors,
    hours_minutes,
    log_time,
    open_ticket,
    run_in_new_loop,
    sign_in,
)
from tests.support import PASSWORD, make_company, new_email

pytestmark = pytest.mark.browser

LOT_MINUTES = 300
ACTUAL_MINUTES = 20
BILLED_MINUTES = 30  # rounded up to the next 15 minutes


async def seed_company_and_technician() -> tuple[str, str]:
    """The catalog, a fresh company with 300 prepaid minutes for Inventor, and a technician:
    (superuser e-mail, technician e-mail)."""
    from backend.services import agreements, clock, ledger
    from backend.services.catalog import seed_demo_catalog
    from backend.services.users import create_staff
    from backend.tables import Role

    await seed_demo_catalog()
    company_id, superuser_email = await make_company(f"Saksreise {secrets.token_hex(3)} AS")
    await ledger.credit_lot(
        company_id=company_id,
        minutes=LOT_MINUTES,
        expires_on=agreements.add_years(clock.today(), 1),
        product_codes=["inventor"],
        key=f"ticket-journey:{secrets.token_hex(8)}",
        cause=ledger.Cause(type="admin", note="Nettleserreise"),
    )
    technician = await create_staff(
        email=new_email("tekniker"),
        name="Tore Tekniker",
        role=Role.technician.value,
        password=PASSWORD,
    )
    return superuser_email, technician.email


def test_customer_opens_ticket_technician_logs_time_customer_sees_the_cost(
    page: Page,
    staff_page: Page,
    live_server: str,
    console_errors: list[str],
    screenshot_dir: Path,
) -> None:
    superuser_email, technician_email = run_in_new_loop(seed_company_and_technician())
    subject = f"Inventor krasjer ved lagring {secrets.token_hex(3)}"
    note = "Ringte kunden, tilbakestilte Inventor-profilen."

    # 1. The customer (context A) opens a ticket for Inventor and lands on its page.
    sign_in(page, live_server, superuser_email)
    expect(page).to_have_url(f"{live_server}/portal")
    ticket_id, number = open_ticket(
        page,
        live_server,
        "Autodesk Inventor",
        subject,
        "Inventor 2025 krasjer hver gang jeg lagrer en sammenstilling.\nFeilkode 0xC0000005.",
    )
    customer_main = page.locator("#main")
    assert number == f"SUP-{ticket_id:06d}"
    expect(customer_main.locator("#ticket-status")).to_have_text("Åpen")
    expect(customer_main).to_contain_text("Ingen timeføringer på saken ennå.")

    # 2. The technician (context B) finds it in the queue by its number and opens it.
    sign_in(staff_page, live_server, technician_email)
    expect(staff_page).to_have_url(f"{live_server}/staff")
    staff_main = staff_page.locator("#main")
    search = staff_page.locator("#queue-filter").get_by_label("Søk på saksnummer")
    search.fill(number)
    staff_page.locator("#queue-filter").get_by_role("button").click()
    expect(staff_page).to_have_url(re.compile(rf"/staff\?q={number}"))
    rows = staff_page.locator("#queue-rows")
    expect(rows).to_contain_text("Antall saker: 1")
    row = rows.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(subject)
    expect(row).to_contain_text("Autodesk Inventor")
    row.get_by_role("link", name=number, exact=True).click()

    expect(staff_page).to_have_url(f"{live_server}/staff/tickets/{ticket_id}")
    expect(staff_main.get_by_role("heading", level=1)).to_have_text(f"{number}: {subject}")
    expect(staff_main).to_contain_text("Ingen tid er ført på saken ennå.")

    # Log 20 minutes by phone, with a note: billed 30 minutes, from the time account.
    entry = log_time(staff_page, ACTUAL_MINUTES, "Telefon", note)
    expect(entry).to_have_count(1)
    cells = entry.locator("td")
    expect(cells.nth(1)).to_have_text("Tore Tekniker")
    expect(cells.nth(2)).to_have_text("Telefon")
    expect(cells.nth(3)).to_have_text(f"{ACTUAL_MINUTES} min")
    expect(cells.nth(4)).to_have_text(f"{BILLED_MINUTES} min")
    expect(cells.nth(5)).to_have_text(f"{BILLED_MINUTES} min trukket fra tidskontoen")
    expect(cells.nth(6)).to_have_text(note)
    expect(staff_page).to_have_url(f"{live_server}/staff/tickets/{ticket_id}")
    staff_page.screenshot(path=screenshot_dir / "ticket-staff.png", full_page=True)

    # 3. The customer reloads the ticket: the entry and what it cost.
    page.reload()
    time_section = customer_main.locator('section[aria-labelledby="time-heading"]')
    customer_entry = time_section.locator("tbody tr")
    expect(customer_entry).to_have_count(1)
    customer_cells = customer_entry.locator("td")
    expect(customer_cells.nth(1)).to_have_text("Tore Tekniker")
    expect(customer_cells.nth(2)).to_have_text(f"{ACTUAL_MINUTES} min")
    expect(customer_cells.nth(3)).to_have_text(f"{BILLED_MINUTES} min")
    expect(customer_cells.nth(4)).to_have_text(f"{BILLED_MINUTES} min trukket fra tidskontoen")
    page.screenshot(path=screenshot_dir / "ticket-customer.png", full_page=True)

    # The dashboard: 300 - 30 minutes left on the time account.
    page.goto("/portal")
    expect(customer_main.locator("#time-account .balance strong")).to_have_text(
        hours_minutes(LOT_MINUTES - BILLED_MINUTES)
    )
    assert hours_minutes(LOT_MINUTES - BILLED_MINUTES) == "4 t 30 min"

    # 4. No console errors in either context (a CSP violation would be one).
    assert_no_console_errors(console_errors)
