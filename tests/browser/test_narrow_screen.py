"""A phone (issue 10): at 390 px wide no page scrolls sideways (a wide table scrolls inside
its own box instead), and the signed-in menu folds into a "Meny" disclosure that opens and
shows its links, announced as collapsed or expanded."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, run_in_new_loop
from tests.support import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# The widest thing on the page that sticks out past the window, to say what to fix.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const element of document.querySelectorAll("body *")) {
    const box = element.getBoundingClientRect();
    if (box.right > width + 0.5 && box.width > 0) {
      let inside = element.parentElement, scrolled = false;
      while (inside) {
        const style = getComputedStyle(inside);
        if (style.overflowX !== "visible" && inside.scrollWidth > inside.clientWidth) {
          scrolled = true;
          break;
        }
        inside = inside.parentElement;
      }
      if (!scrolled) {
        const name = `${element.tagName.toLowerCase()}#${element.id}.${element.className}`;
        out.push(`${name} ${Math.round(box.right)}`);
      }
    }
  }
  return out.slice(0, 8);
}"""


async def company_with_history() -> dict[str, object]:
    """A company with something on every page: a lot, tickets with time, hourly charges, a paid
    order; and an admin of the reseller."""
    from backend.services import catalog, clock, coverage, ledger
    from backend.services.users import create_staff
    from tests.support import make_company, make_order, make_ticket, new_email

    await catalog.seed_demo_catalog()
    company_id, email = await make_company("Smal Skjerm og Langt Firmanavn Mekaniske Verksted AS")
    admin_email = new_email("admin")
    admin = await create_staff(email=admin_email, name="Ada Admin", role="admin", password=PASSWORD)
    await ledger.credit_lot(
        company_id=company_id,
        minutes=300,
        expires_on=clock.today() + datetime.timedelta(days=300),
        product_codes=["inventor"],
        key=f"narrow-lot-{company_id}",
        cause=ledger.Cause(type="order"),
    )
    covered = await make_ticket(
        company_id, "Sammenstillingen låser seg ved lagring av store tegninger", opened_days_ago=3
    )
    hourly = await make_ticket(company_id, "Vault-innsjekking feiler", product="vault")
    for n, ticket in enumerate((covered, hourly)):
        await coverage.record_time_entry(
            ticket=ticket,
            technician=admin,
            actual=40,
            performed_on=clock.today(),
            channel="phone",
            note="Gjennomgang på telefon",
            key=f"narrow-time-{ticket.id}-{n}",
        )
    order = await make_order(company_id)
    return {
        "email": email,
        "admin_email": admin_email,
        "company": company_id,
        "ticket": covered.id,
        "order": order.id,
    }


def sign_in(page: Page, live_server: str, email: str, lands_on: str) -> None:
    page.goto("/login")
    form = page.locator("#login-form")
    form.locator('[name="email"]').fill(email)
    form.locator('[name="password"]').fill(PASSWORD)
    form.get_by_role("button", name="Logg inn").click()
    expect(page).to_have_url(f"{live_server}{lands_on}")


def too_wide(page: Page, paths: tuple[str, ...]) -> list[str]:
    """The pages among `paths` that scroll sideways, with what sticks out."""
    found = []
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response)
        assert page.url.endswith(path), (path, page.url)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            found.append(f"{path}: {width} px, {page.evaluate(OVERFLOWING)}")
    return found


def menu_expanded(page: Page) -> bool | None:
    """What Chromium tells a screen reader about the "Meny" button: collapsed or expanded."""
    session = page.context.new_cdp_session(page)
    try:
        nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        session.detach()
    for node in nodes:
        if node.get("name", {}).get("value") == "Meny" and not node.get("ignored"):
            for prop in node.get("properties", []):
                if prop["name"] == "expanded":
                    return prop["value"]["value"]
    return None


def test_no_page_scrolls_sideways_on_a_phone_and_the_menu_folds(
    browser, live_server: str, console_errors: list[str], screenshot_dir: Path
) -> None:
    data = run_in_new_loop(company_with_history())
    context = browser.new_context(base_url=live_server, locale="nb-NO", viewport=PHONE)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: console_errors.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda m: console_errors.append(f"console: {m.text}") if m.type == "error" else None,
        )
        wide = too_wide(page, ("/", "/login", "/register"))
        sign_in(page, live_server, str(data["email"]), "/portal")
        ticket, order = data["ticket"], data["order"]
        wide += too_wide(
            page,
            (
                "/portal",
                "/portal/tickets",
                f"/portal/tickets/{ticket}",
                "/portal/tickets/new",
                "/portal/account",
                "/portal/topup",
                "/portal/plan",
                "/portal/usage",
                "/portal/orders",
                f"/portal/orders/{order}",
                f"/portal/orders/{order}/receipt",
                "/portal/charges",
                "/portal/company",
            ),
        )

        # The menu: folded, it shows none of its links; opened, all of them, over the page.
        page.goto("/portal/usage")
        nav = page.get_by_role("navigation", name="Hovedmeny")
        links = ("Oversikt", "Saker", "Tidskonto", "Forbruk", "Fri support", "Firma")
        for name in links:
            expect(nav.get_by_role("link", name=name, exact=True)).to_be_hidden()
        expect(nav.get_by_role("button", name="Logg ut")).to_be_hidden()
        assert menu_expanded(page) is False
        nav.get_by_text("Meny", exact=True).click()
        for name in links:
            expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
        expect(nav.get_by_role("button", name="Logg ut")).to_be_visible()
        assert menu_expanded(page) is True
        page.screenshot(path=screenshot_dir / "phone-menu-open.png")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # A link in it leads on (htmx navigation), and the menu folds again.
        nav.get_by_role("link", name="Tidskonto", exact=True).click()
        expect(page).to_have_url(f"{live_server}/portal/account")
        expect(page.get_by_role("heading", level=1)).to_have_text("Tidskonto")
        expect(nav.get_by_role("link", name="Saker", exact=True)).to_be_hidden()
        assert menu_expanded(page) is False
        page.goto("/portal")
        page.screenshot(path=screenshot_dir / "phone-dashboard.png", full_page=True)

        # Staff pages, signed in as the reseller's admin.
        context.clear_cookies()
        sign_in(page, live_server, str(data["admin_email"]), "/staff")
        wide += too_wide(
            page,
            (
                "/staff",
                f"/staff/tickets/{ticket}",
                "/staff/tickets/new",
                "/staff/companies",
                f"/staff/companies/{data['company']}",
            ),
        )
        assert not wide, "\n".join(wide)
        nav = page.get_by_role("navigation", name="Hovedmeny")
        expect(nav.get_by_role("link", name="Saksbehandling")).to_be_hidden()
        nav.get_by_text("Meny", exact=True).click()
        expect(nav.get_by_role("link", name="Saksbehandling")).to_be_visible()
    finally:
        context.close()
    assert_no_console_errors(console_errors)


def test_on_a_wide_screen_the_menu_is_a_row_of_links(page: Page, live_server: str) -> None:
    data = run_in_new_loop(company_with_history())
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server, str(data["email"]), "/portal")
    nav = page.get_by_role("navigation", name="Hovedmeny")
    for name in ("Oversikt", "Saker", "Tidskonto", "Forbruk", "Fri support", "Firma"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_text("Meny", exact=True)).to_be_hidden()


async def company_with_pending_order() -> dict[str, object]:
    from backend.services import catalog
    from tests.support import make_company, make_order

    await catalog.seed_demo_catalog()
    company_id, email = await make_company()
    order = await make_order(company_id, status="pending")
    return {"email": email, "order": order.id}


# The path of the next request htmx settles, once the portal's own listeners have run.
NEXT_SETTLE = """() => new Promise(resolve =>
  document.addEventListener("htmx:afterSettle", event => resolve(event.detail.pathInfo.requestPath),
                            {once: true}))"""
WATCH_NEXT_SETTLE = f"() => {{ window.nextSettle = ({NEXT_SETTLE})(); }}"


def test_the_open_menu_stays_open_while_a_region_of_the_page_refreshes(
    browser, live_server: str, console_errors: list[str]
) -> None:
    """An order waiting for payment polls its status every two seconds, and the dashboard's
    regions refresh when the tab is shown again: neither is the menu leading on."""
    data = run_in_new_loop(company_with_pending_order())
    context = browser.new_context(base_url=live_server, locale="nb-NO", viewport=PHONE)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: console_errors.append(f"pageerror: {error}"))
        sign_in(page, live_server, str(data["email"]), "/portal")
        nav = page.get_by_role("navigation", name="Hovedmeny")

        page.goto(f"/portal/orders/{data['order']}")
        nav.get_by_text("Meny", exact=True).click()
        assert menu_expanded(page) is True
        assert page.evaluate(NEXT_SETTLE) == f"/portal/orders/{data['order']}/status"
        assert menu_expanded(page) is True
        expect(nav.get_by_role("link", name="Saker", exact=True)).to_be_visible()

        page.goto("/portal")
        nav.get_by_text("Meny", exact=True).click()
        page.evaluate(WATCH_NEXT_SETTLE)
        page.evaluate("htmx.trigger(document.body, 'page-shown')")  # the tab shown again
        assert page.evaluate("window.nextSettle") == "/portal"
        assert menu_expanded(page) is True

        # A link in it still folds it as it leads on.
        nav.get_by_role("link", name="Saker", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Saker")
        expect(nav.get_by_role("link", name="Oversikt", exact=True)).to_be_hidden()
        assert menu_expanded(page) is False
    finally:
        context.close()
    assert_no_console_errors(console_errors)
