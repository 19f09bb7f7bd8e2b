"""Helpers the browser journeys share."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support import PASSWORD

HOSTED_CHECKOUT = re.compile(r"/sandbox/stripe/checkout/([^/?#]+)$")


def run_in_new_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Runs a coroutine to the end in a fresh event loop on a thread of its own: Playwright's
    sync API (and pytest-asyncio) own the loop of the test's thread."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="journey-setup")
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "setting up the journey's data did not finish"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def assert_no_console_errors(errors: list[str], expected: Iterable[re.Pattern[str]] = ()) -> None:
    """No console errors (a CSP violation, a script error, a failed load) but the expected."""
    patterns = list(expected)
    unexpected = [e for e in errors if not any(p.match(e) for p in patterns)]
    assert not unexpected, "\n".join(unexpected)


def hours_minutes(minutes: int) -> str:
    """330 -> «5 t 30 min», as the portal writes a number of minutes."""
    return f"{minutes // 60} t {minutes % 60} min"


def nok_pattern(amount_ore: int) -> re.Pattern[str]:
    """687500 -> a pattern for «6 875,00 kr», whichever spaces (often non-breaking) are used."""
    kroner, ore = divmod(amount_ore, 100)
    digits = r"\s?".join(re.escape(group) for group in f"{kroner:,}".split(","))
    return re.compile(rf"{digits},{ore:02d}\s*kr")


def sign_in(page: Page, live_server: str, email: str, *, password: str = PASSWORD) -> None:
    """Signs in on the login page and lands where the person starts: a company's people on the
    portal, staff on the console."""
    page.goto("/login")
    form = page.locator("#login-form")
    form.locator('[name="email"]').fill(email)
    form.locator('[name="password"]').fill(password)
    form.get_by_role("button", name="Logg inn").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server)}/(portal|staff)$"))


def start_top_up(page: Page, hours: int, products: Sequence[str] = ()) -> None:
    """Fills the top-up form with a pack of `hours` and the products named (or, with none, keeps
    those already chosen, else the first) and goes to payment: on the sandbox's hosted page."""
    page.goto("/portal/topup")
    form = page.locator("#topup-form")
    form.get_by_role("radio", name=re.compile(rf"^{hours} timer\b")).check()
    boxes = form.locator('input[type="checkbox"][name="products"]')
    expect(boxes.first).to_be_visible()
    if products:
        for box in boxes.all():
            box.uncheck()
        for name in products:
            form.get_by_role("checkbox", name=name, exact=True).check()
    elif form.locator('input[type="checkbox"][name="products"]:checked').count() == 0:
        boxes.first.check()
    form.get_by_role("button", name="Gå til betaling").click()
    expect(page).to_have_url(HOSTED_CHECKOUT)


def pay_on_sandbox(page: Page, total_ore: int) -> Locator:
    """Pays `total_ore` (incl. MVA) on the sandbox's «Testmodus» page and waits on the order page
    until it says paid; the order's status region."""
    total = nok_pattern(total_ore).pattern
    expect(page.get_by_role("heading", level=1)).to_contain_text("Testmodus")
    expect(page.get_by_role("heading", name=re.compile(r"^Betaling: "))).to_have_text(
        re.compile(rf"^Betaling: {total}$")
    )
    expect(page.locator("tfoot")).to_contain_text(nok_pattern(total_ore))
    page.get_by_role("button", name=re.compile(rf"^Betal {total}$")).click()
    # The order page polls (htmx, every 2 s) until the order is final: the webhook may be later.
    expect(page).to_have_url(re.compile(r"/portal/orders/\d+\?session_id=cs_[^&#]+$"))
    status = page.locator("#order-status")
    expect(status).to_contain_text("Betalt", timeout=15_000)
    return status


def log_time(staff_page: Page, actual_minutes: int, channel: str, note: str) -> Locator:
    """A technician logs time with the staff ticket page's form; the entry rows once the new
    one is there."""
    entries = staff_page.locator("#main").locator('tr[id^="time-entry-"]')
    before = entries.count()
    form = staff_page.locator("#time-form")
    form.get_by_label("Faktiske minutter").fill(str(actual_minutes))
    form.get_by_label("Kanal").select_option(label=channel)
    form.get_by_label("Notat (valgfritt)").fill(note)
    form.get_by_role("button", name="Før tid").click()
    expect(entries).to_have_count(before + 1)
    return entries


TICKET_NUMBER = re.compile(r"SUP-\d{6}")


def open_ticket(
    page: Page, live_server: str, product: str, subject: str, description: str
) -> tuple[int, str]:
    """A company's user opens a ticket with the portal's form and lands on its page:
    (the ticket's id, its number)."""
    page.goto("/portal/tickets/new")
    form = page.locator("#ticket-form")
    form.get_by_label("Produkt").select_option(label=product)
    form.get_by_label("Emne").fill(subject)
    form.get_by_label("Beskrivelse").fill(description)
    form.get_by_role("button", name="Send saken").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server)}/portal/tickets/\d+$"))
    main = page.locator("#main")
    expect(main.get_by_role("heading", level=1)).to_have_text(subject)
    number_line = main.locator("hgroup p")
    expect(number_line).to_have_text(TICKET_NUMBER)
    return int(page.url.rsplit("/", 1)[-1]), number_line.inner_text().strip()
