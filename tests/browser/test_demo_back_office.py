"""The back office in the demo (README, "The back office in the demo"; issue 12), in a real
browser against the portal served as under `make run`: the demo superuser buys 5 hours in the
sandbox; the demo admin opens every back-office page, refunds part of that order (the
confirmation page says the minutes written off, the sandbox's charge.refunded confirms it, the
balance goes down by exactly those), imports existing customers from a CSV file and finds the
refund and the import, with their reasons, in the audit trail."""

from __future__ import annotations

import csv
import datetime
import io
import random
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    assert_no_console_errors,
    hours_minutes,
    pay_on_sandbox,
    run_in_new_loop,
    sign_in,
    start_top_up,
)
from tests.browser.test_money_journey import minutes_shown, seed_demo_and_read_hour_price

pytestmark = pytest.mark.browser

SUPERUSER = "superbruker@demo.no"
ADMIN = "admin@demo.no"
ADMIN_LABEL = "Anne Admin <admin@demo.no>"
COMPANY = "Demo Mekanikk AS"
PACK_HOURS = 5
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "eksisterende-kunder.csv"

# The admin index's links and what each page is called (its h1).
ADMIN_PAGES = {
    "Katalog og priser": ("/staff/admin/catalog", "Katalog og priser"),
    "Logg over handlinger": ("/staff/admin/audit", "Logg over handlinger"),
    "Rapporter": ("/staff/admin/reports", "Rapporter"),
    "Eksisterende kunder": ("/staff/admin/onboarding", "Eksisterende kunder"),
    "Ansatte": ("/staff/admin/staff", "Ansatte"),
}
# The catalog's own menu: prices and the business settings (each page's h1 is its link).
CATALOG_PAGES = {
    "Priser og prishistorikk": "/staff/admin/catalog/prices",
    "Selger, stengte dager og varslingsgrense": "/staff/admin/catalog/settings",
}


async def lot_of(order_id: int) -> dict:
    from backend.tables import Lot

    lot = await Lot.select().where(Lot.order == order_id).first()
    assert lot is not None, f"order {order_id} made no lot"
    return lot


async def written_off(lot_id: int) -> int:
    """The minutes the lot's refund write-offs took, from the ledger."""
    from backend.tables import LedgerEntry
    from backend.tables.ledger import EntryKind

    rows = await LedgerEntry.select(LedgerEntry.minutes).where(
        (LedgerEntry.lot == lot_id) & (LedgerEntry.kind == EntryKind.refund_write_off.value)
    )
    return -sum(row["minutes"] for row in rows)


async def unused_org_numbers(count: int) -> list[str]:
    """Valid (mod 11) organisation numbers no company in the portal has: the test database
    lives for the whole run, and the example file's are fixed."""
    from stdnum.no import orgnr

    from backend.tables import Company

    found: list[str] = []
    while len(found) < count:
        candidate = str(random.randint(900_000_000, 999_999_999))
        if (
            orgnr.is_valid(candidate)
            and candidate not in found
            and not await Company.exists().where(Company.org_number == candidate)
        ):
            found.append(candidate)
    return found


def fresh_copy(org_numbers: list[str], tag: str, today: datetime.date) -> bytes:
    """The example file with fresh org numbers, names and e-mails, and its dates as far from
    today as the example's were from the day it was written (a plan running now, hours bought
    months ago and valid months ahead)."""
    day = "%d.%m.%Y"
    rows = list(csv.DictReader(io.StringIO(EXAMPLE.read_text(encoding="utf-8")), delimiter=";"))
    assert len(rows) == 2 == len(org_numbers)
    for row, org_number in zip(rows, org_numbers, strict=True):
        row["orgnr"] = org_number
        row["firmanavn"] = row["firmanavn"].replace(" AS", f" {tag} AS")
        local, domain = row["epost"].split("@")
        row["epost"] = f"{local}+{tag}@{domain}"
        if row["avtale_fra"]:
            row["avtale_fra"] = (today - datetime.timedelta(days=60)).strftime(day)
            row["avtale_til"] = (today + datetime.timedelta(days=120)).strftime(day)
        if row["kjopt"]:
            row["kjopt"] = (today - datetime.timedelta(days=260)).strftime(day)
            row["gyldig_til"] = (today + datetime.timedelta(days=100)).strftime(day)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=";", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def example_still_current(today: datetime.date) -> bool:
    """Whether the example's plans and hours still run today (its dates are fixed)."""
    rows = list(csv.DictReader(io.StringIO(EXAMPLE.read_text(encoding="utf-8")), delimiter=";"))
    ends = [row[column] for row in rows for column in ("avtale_til", "gyldig_til") if row[column]]
    return all(datetime.datetime.strptime(end, "%d.%m.%Y").date() >= today for end in ends)


def nok_input(amount_ore: int) -> str:
    """12345 -> «123,45», as an admin types an amount."""
    return f"{amount_ore // 100},{amount_ore % 100:02d}"


def upload(page: Page, name: str, data: bytes, reason: str) -> None:
    """Sends a CSV file to the onboarding page's dry run."""
    page.goto("/staff/admin/onboarding")
    form = page.locator('form[action="/staff/admin/onboarding/csv"]')
    form.get_by_label("CSV-fil").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": data}
    )
    form.get_by_label("Begrunnelse").fill(reason)
    form.get_by_role("button", name="Kontroller filen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Kontroll av CSV-filen")


def test_the_demo_admin_walks_the_back_office(
    page: Page, live_server: str, console_errors: list[str]
) -> None:
    from backend.services import clock
    from backend.services.demo import DEMO_PASSWORD
    from backend.services.money import mva_ore

    hour_price_ore = run_in_new_loop(seed_demo_and_read_hour_price())
    amount_ore = PACK_HOURS * hour_price_ore
    total_ore = amount_ore + mva_ore(amount_ore)
    tag = secrets.token_hex(3)
    main = page.locator("#main")

    # 1. The demo superuser buys 5 hours and pays in the sandbox.
    sign_in(page, live_server, SUPERUSER, password=DEMO_PASSWORD)
    start_top_up(page, PACK_HOURS)
    pay_on_sandbox(page, total_ore)
    order_id = int(re.search(r"/portal/orders/(\d+)", page.url)[1])
    page.locator("header").get_by_role("button", name="Logg ut").click()
    expect(page.locator("header").get_by_role("button", name="Logg ut")).to_have_count(0)

    # 2. The demo admin: every page the back office's index links to opens.
    sign_in(page, live_server, ADMIN, password=DEMO_PASSWORD)
    staff_menu = page.get_by_role("navigation", name="Saksbehandling")
    staff_menu.get_by_role("link", name="Administrasjon").click()
    expect(page).to_have_url(f"{live_server}/staff/admin")
    index_links = main.locator("h1 + ul").get_by_role("link")
    expect(index_links).to_have_count(len(ADMIN_PAGES))
    for link_text, (path, heading) in ADMIN_PAGES.items():
        main.get_by_role("link", name=link_text, exact=True).click()
        expect(page).to_have_url(f"{live_server}{path}")
        expect(main.get_by_role("heading", level=1)).to_have_text(heading)
        if path == "/staff/admin/catalog":
            catalog_menu = page.get_by_role("navigation", name="Katalog og priser")
            for catalog_link, catalog_path in CATALOG_PAGES.items():
                catalog_menu.get_by_role("link", name=catalog_link).click()
                expect(page).to_have_url(f"{live_server}{catalog_path}")
                expect(main.get_by_role("heading", level=1)).to_have_text(catalog_link)
        staff_menu.get_by_role("link", name="Administrasjon").click()
        expect(page).to_have_url(f"{live_server}/staff/admin")

    # 3. Firmaer → the demo company → the order just paid → Refunder, half of it.
    staff_menu.get_by_role("link", name="Firmaer").click()
    expect(page).to_have_url(f"{live_server}/staff/companies")
    main.get_by_role("searchbox").fill("Demo Mekanikk")
    main.get_by_role("button", name="Søk").click()
    main.get_by_role("link", name=COMPANY, exact=True).click()
    expect(main.get_by_role("heading", level=1)).to_have_text(COMPANY)
    company_url = page.url
    balance = main.locator("#time-account .balance strong")
    before = minutes_shown(balance.inner_text())

    main.locator("#orders").get_by_role("link", name=f"#{order_id}", exact=True).click()
    expect(page).to_have_url(f"{live_server}/staff/orders/{order_id}")
    lot = run_in_new_loop(lot_of(order_id))
    assert lot["minutes"] == PACK_HOURS * 60
    refund_ore = total_ore // 2
    # SPEC §4: the refunded share of the lot, rounded up, at most what it has unused.
    expected_write_off = min(lot["remaining_minutes"], -(-lot["minutes"] * refund_ore // total_ore))
    assert expected_write_off > 0
    refund_reason = f"Demo: kunden angret halve kjøpet {tag}"
    refund_form = main.locator("#refund-form")
    refund_form.get_by_label("Beløp inkl. mva (kr)").fill(nok_input(refund_ore))
    refund_form.get_by_label("Begrunnelse").fill(refund_reason)
    refund_form.get_by_role("button", name="Se hva refusjonen gjør").click()

    expect(main.get_by_role("heading", level=1)).to_have_text("Bekreft refusjon")
    effect = main.locator("#refund-effect")
    expect(effect).to_contain_text(
        f"{expected_write_off} minutter skrives av tidskontoen "
        f"(puljen har {lot['remaining_minutes']} minutter ubrukt)."
    )
    expect(effect).to_contain_text(refund_reason)
    effect.get_by_role("button", name="Bekreft refusjonen").click()

    # The sandbox sends charge.refunded; the status region asks until it is confirmed.
    expect(page).to_have_url(f"{live_server}/staff/orders/{order_id}")
    status = main.locator("#refund-status")
    row = status.locator("tbody tr", has_text=refund_reason)
    expect(row).to_contain_text("Bekreftet", timeout=15_000)
    expect(status.locator(".refund-waiting")).to_have_count(0)
    assert run_in_new_loop(written_off(lot["id"])) == expected_write_off
    page.goto(company_url)
    expect(balance).to_have_text(hours_minutes(before - expected_write_off))

    # 4. Existing customers from the example file: a copy with fresh org numbers, e-mails and
    # dates around today, dry run, then imported.
    today = clock.today()
    if example_still_current(today):
        upload(page, EXAMPLE.name, EXAMPLE.read_bytes(), "Demo: kontroll av eksempelfilen")
        expect(main.get_by_role("status")).to_contain_text("Ingen feil")
        expect(main.get_by_role("button", name="Bekreft og importer 2 firma")).to_be_visible()

    org_numbers = run_in_new_loop(unused_org_numbers(2))
    import_reason = f"Demo: kunder fra det gamle systemet {tag}"
    upload(page, "eksisterende-kunder.csv", fresh_copy(org_numbers, tag, today), import_reason)
    expect(main.get_by_role("status")).to_contain_text("Ingen feil")
    expect(main.locator(".form-alert")).to_have_count(0)
    main.get_by_role("button", name="Bekreft og importer 2 firma").click()
    expect(page).to_have_url(f"{live_server}/staff/admin/onboarding?imported=2")
    expect(main.get_by_role("status")).to_contain_text("2 firma opprettet")
    for org_number, name in zip(
        org_numbers, (f"Fjordverktøy {tag} AS", f"Nordlys CNC {tag} AS"), strict=True
    ):
        page.goto(f"/staff/companies?q={org_number}")
        expect(main.locator("tbody tr")).to_have_count(1)
        expect(main.get_by_role("link", name=name, exact=True)).to_be_visible()

    # 5. The audit trail, the demo admin's actions: the refund and the import, with reasons.
    page.goto("/staff/admin/audit")
    main.get_by_label("Utført av").select_option(label=ADMIN_LABEL)
    main.get_by_role("button", name="Vis").click()
    trail = main.locator("tbody tr")
    expect(trail.filter(has_text="Refusjon").filter(has_text=refund_reason)).to_have_count(1)
    expect(trail.filter(has_text="Import").filter(has_text=import_reason)).not_to_have_count(0)

    assert_no_console_errors(console_errors)
