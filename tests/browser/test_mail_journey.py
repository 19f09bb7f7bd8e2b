"""Support by e-mail, end to end: a customer's mail (sent over SMTP to the portal's receiver)
becomes a ticket, a technician signed in in Chromium replies on it, and the reply arrives by
mail at the run's SMTP server, numbered and threaded under the customer's mail."""

from __future__ import annotations

import re
import secrets
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, run_in_new_loop, sign_in
from tests.support import PASSWORD, make_company, new_email

pytestmark = pytest.mark.browser


async def seed() -> tuple[str, str]:
    from backend.services.catalog import seed_demo_catalog
    from backend.services.users import create_staff

    await seed_demo_catalog()
    _, customer = await make_company(f"E-postreise {secrets.token_hex(3)} AS")
    technician = await create_staff(
        email=new_email("tekniker"), name="Tina Tekniker", role="technician", password=PASSWORD
    )
    return customer, technician.email


async def mail_support(message: EmailMessage) -> int:
    """Sends `message` over SMTP to the portal's receiver (on a free loopback port, in this
    loop) and returns the ticket it opened."""
    import socket

    import aiosmtplib

    from backend.services import inbound_mail
    from backend.tables import InboundMail

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = await inbound_mail.start_receiver("127.0.0.1", port)
    try:
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=30)
    finally:
        server.close()
        await server.wait_closed()
    row = await InboundMail.objects().get(InboundMail.message_id == message["Message-ID"])
    return row.ticket


def wait_for_mail(smtp, address: str, count: int, seconds: float = 30) -> list[EmailMessage]:
    """The live portal's own sender delivers within seconds; a bounded wait for it."""
    deadline = time.monotonic() + seconds
    while len(found := smtp.messages_to(address)) < count:
        assert time.monotonic() < deadline, f"{count} mail(s) to {address} expected"
        time.sleep(0.2)
    return found


def test_a_customers_mail_becomes_a_ticket_and_the_technicians_reply_arrives_by_mail(
    staff_page: Page,
    live_server: str,
    console_errors: list[str],
    screenshot_dir: Path,
    smtp,
) -> None:
    customer, technician = run_in_new_loop(seed())
    subject = f"Inventor krasjer ved lagring {secrets.token_hex(3)}"
    message = EmailMessage()
    message["From"] = f"Kari Kunde <{customer}>"
    message["To"] = "support@portal.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="kunde.example")
    message.set_content("Hei!\nInventor krasjer hver gang jeg lagrer en stor sammenstilling.")
    ticket_id = run_in_new_loop(mail_support(message))
    number = f"SUP-{ticket_id:06d}"

    # The customer's auto-reply, from the live portal's sender.
    [auto_reply] = wait_for_mail(smtp, customer, 1)
    assert auto_reply["Subject"].startswith(f"[{number}]")

    sign_in(staff_page, live_server, technician)
    expect(staff_page).to_have_url(f"{live_server}/staff")
    staff_page.locator("#queue-filter").get_by_label("Søk på saksnummer").fill(number)
    staff_page.locator("#queue-filter").get_by_role("button").click()
    row = staff_page.locator("#queue-rows tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(subject)
    expect(row).to_contain_text("E-post")
    row.get_by_role("link", name=number, exact=True).click()
    main = staff_page.locator("#main")
    expect(main.get_by_role("heading", level=1)).to_have_text(f"{number}: {subject}")
    expect(main).to_contain_text("krasjer hver gang jeg lagrer")

    reply = "Prøv å slå av maskinvareakselerasjon under Innstillinger."
    form = staff_page.locator("#message-form")
    form.get_by_label("Svar eller notat").fill(reply)
    form.get_by_role("button", name="Send").click()
    expect(main.locator("article.message")).to_contain_text(reply)
    staff_page.screenshot(path=screenshot_dir / "mail-ticket-staff.png", full_page=True)

    mails = wait_for_mail(smtp, customer, 2)
    answer = mails[-1]
    assert answer["Subject"] == f"Re: [{number}] {subject}"
    assert answer["In-Reply-To"] == auto_reply["Message-ID"]
    assert message["Message-ID"] in answer["References"]
    assert reply in answer.get_body(("plain",)).get_content()
    assert re.search(rf"/portal/tickets/{ticket_id}\b", answer.get_body(("plain",)).get_content())
    assert_no_console_errors(console_errors)
