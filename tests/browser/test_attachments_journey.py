"""Files on a ticket in a real browser: the customer attaches a screenshot (a PNG named .txt)
and a renamed HTML file to a reply through htmx; only the PNG shows as a thumbnail (and loads
under the CSP); too large a file is stopped before it is sent, the text kept; the technician
sees both files on the staff page."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, open_ticket, run_in_new_loop, sign_in
from tests.support import PASSWORD, make_company, new_email
from tests.test_attachments import HTML, png_bytes

pytestmark = pytest.mark.browser

MB = 1024 * 1024


async def seed() -> tuple[str, str]:
    from backend.services.catalog import seed_demo_catalog
    from backend.services.users import create_staff

    await seed_demo_catalog()
    _, superuser_email = await make_company(f"Vedleggsreise {secrets.token_hex(3)} AS")
    technician = await create_staff(
        email=new_email("tekniker"), name="Tore Tekniker", role="technician", password=PASSWORD
    )
    return superuser_email, technician.email


def test_a_reply_with_files_shows_a_thumbnail_only_for_the_png(
    page: Page,
    staff_page: Page,
    live_server: str,
    console_errors: list[str],
    screenshot_dir: Path,
) -> None:
    superuser_email, technician_email = run_in_new_loop(seed())
    sign_in(page, live_server, superuser_email)
    ticket_id, _ = open_ticket(
        page, live_server, "Autodesk Inventor (timesats)", "Skjermbilde av feilen", "Se vedlagt."
    )
    form = page.locator("#reply-form")
    files = form.get_by_label("Vedlegg (valgfritt)")

    # Too large: the browser refuses it on the spot, and nothing is sent.
    form.get_by_label("Svar").fill("Her er skjermbildet og siden.")
    files.set_input_files(
        [{"name": "stor.log", "mimeType": "text/plain", "buffer": b"x" * (10 * MB + 1)}]
    )
    assert files.evaluate("field => field.validationMessage") == (
        "En av filene er større enn 10 MB. En fil kan være på høyst 10 MB."
    )
    form.get_by_role("button", name="Send svar").click()
    expect(form.get_by_label("Svar")).to_have_value("Her er skjermbildet og siden.")
    expect(page.locator("#ticket-thread ul.attachments")).to_have_count(0)

    # Within the limits: sent through htmx as multipart.
    files.set_input_files(
        [
            {"name": "skjerm.txt", "mimeType": "text/plain", "buffer": png_bytes(40, 30)},
            {"name": "side.png", "mimeType": "image/png", "buffer": HTML},
        ]
    )
    assert files.evaluate("field => field.validationMessage") == ""
    form.get_by_role("button", name="Send svar").click()

    thread = page.locator("#ticket-thread")
    expect(thread.get_by_role("link", name="skjerm.txt")).to_be_visible()
    expect(thread.get_by_role("link", name="side.png")).to_be_visible()
    thumbnails = thread.locator("img.attachment-thumbnail")
    expect(thumbnails).to_have_count(1)
    expect(thumbnails).to_have_attribute(
        "src", re.compile(rf"^/portal/tickets/{ticket_id}/attachments/\d+/image$")
    )
    # Loaded, not blocked: a picture 40 pixels wide.
    page.wait_for_function(
        "() => document.querySelector('img.attachment-thumbnail').naturalWidth === 40"
    )
    page.screenshot(path=str(screenshot_dir / "attachments-thread.png"), full_page=True)

    # Support sees the same files on the staff page.
    sign_in(staff_page, live_server, technician_email)
    staff_page.goto(f"/staff/tickets/{ticket_id}")
    expect(staff_page.get_by_role("link", name="skjerm.txt")).to_be_visible()
    expect(staff_page.get_by_role("link", name="side.png")).to_be_visible()
    expect(staff_page.locator("img.attachment-thumbnail")).to_have_count(1)

    assert_no_console_errors(console_errors)


def test_a_thread_with_files_and_the_file_field_are_accessible(
    axe_page: Page, live_server: str
) -> None:
    from tests.browser.test_accessibility import assert_accessible

    page = axe_page
    superuser_email, _ = run_in_new_loop(seed())
    sign_in(page, live_server, superuser_email)
    open_ticket(page, live_server, "Autodesk Inventor (timesats)", "Tilgjengelige filer", "Se.")
    form = page.locator("#reply-form")
    form.get_by_label("Svar").fill("Vedlagt.")
    form.get_by_label("Vedlegg (valgfritt)").set_input_files(
        [
            {"name": "skjerm.png", "mimeType": "image/png", "buffer": png_bytes(40, 30)},
            {"name": "logg.txt", "mimeType": "text/plain", "buffer": b"linje\n"},
        ]
    )
    form.get_by_role("button", name="Send svar").click()
    expect(page.locator("#ticket-thread img.attachment-thumbnail")).to_have_count(1)

    assert_accessible(page, "a ticket's thread with files")
