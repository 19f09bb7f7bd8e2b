"""Where the minutes went, in real browsers: a superuser tops up the time account through the
sandbox's Checkout and opens a ticket; a technician logs time on it in the staff console (a
second context); the superuser then reads the statement (the debit with its ticket, technician,
minutes and the balance the time account shows), filters it in place, shows more rows, downloads
the CSV (the same rows, as Excel in Norway reads them) and reads the monthly chart (the same
figures as its table). Last, axe-core on the ticket list and the ticket page.

The company also has support on Fusion billed by the hour, logged through the services before
the journey: enough rows for a second page, and amounts with øre for the CSV's decimal comma."""

from __future__ import annotations

import csv
import io
import itertools
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    assert_no_console_errors,
    hours_minutes,
    log_time,
    nok_pattern,
    open_ticket,
    pay_on_sandbox,
    run_in_new_loop,
    sign_in,
    start_top_up,
)
from tests.browser.test_accessibility import assert_accessible
from tests.support import PASSWORD, make_company, make_ticket, new_email

pytestmark = pytest.mark.browser

PACK_HOURS = 5
ACTUAL_MINUTES = 20
BILLED_MINUTES = 30  # rounded up to the next 15 minutes
HOURLY_ENTRIES = 55  # with the purchase and the debit, more than a page (50) of rows
HOURLY_ACTUAL = 10  # billed 15 minutes at the hourly rate each
TECHNICIAN = "Tore Tekniker"

CSV_DATE = re.compile(r"^\d{2}\.\d{2}\.\d{4}$")


async def seed_company_with_hourly_support() -> tuple[str, str, int, int]:
    """The catalog, a fresh company, a technician, and HOURLY_ENTRIES pieces of support on a
    Fusion ticket that nothing covers (billed by the hour): (superuser e-mail, technician
    e-mail, the prepaid hour's price and the hourly rate, in øre)."""
    from backend.services import clock, coverage
    from backend.services.catalog import seed_demo_catalog
    from backend.services.users import create_staff
    from backend.tables import PriceList, Role

    await seed_demo_catalog()
    company_id, superuser_email = await make_company(f"Forbruksreise {secrets.token_hex(3)} AS")
    technician = await create_staff(
        email=new_email("tekniker"), name=TECHNICIAN, role=Role.technician.value, password=PASSWORD
    )
    ticket = await make_ticket(company_id, "Fusion-lisensen forsvinner", product="fusion")
    for _ in range(HOURLY_ENTRIES):
        await coverage.record_time_entry(
            ticket=ticket,
            technician=technician,
            actual=HOURLY_ACTUAL,
            performed_on=clock.today(),
            channel="mail",
            note="",
            key=None,
        )
    prices = await PriceList.objects().first()
    return (
        superuser_email,
        technician.email,
        prices.prepaid_hour_price_ore,
        prices.hourly_rate_ore,
    )


def statement_cells(page: Page) -> list[list[str]]:
    """The statement's rows as shown, each as the text of its cells."""
    return page.locator("#usage-rows tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.innerText.trim()))"
    )


def minutes_of(text: str) -> int:
    """«4 t 30 min» -> 270."""
    match = re.fullmatch(r"(\d+) t (\d+) min", text)
    assert match, f"not hours and minutes: {text!r}"
    return int(match[1]) * 60 + int(match[2])


def moved(text: str) -> int:
    """The statement's «Minutter» cell: «+300 min», «−30 min» or empty."""
    if not text:
        return 0
    match = re.fullmatch(r"([+−])(\d+) min", text)
    assert match, f"not minutes moved: {text!r}"
    return int(match[2]) * (1 if match[1] == "+" else -1)


def assert_csv_matches(content: bytes, shown: list[list[str]]) -> None:
    """The CSV, byte for byte as Excel set up for Norway reads it, holds the rows shown."""
    assert content.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte-order mark"
    text = content[3:].decode("utf-8")
    assert text.endswith("\r\n")
    header, *rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert header[:3] == ["Dato", "Hva", "Saksnummer"] and header[-2:] == [
        "Saldo (min)",
        "Merknad",
    ]
    assert len(rows) == len(shown), "the CSV and the page hold different rows"
    for fields, cells in zip(rows, shown, strict=True):
        assert len(fields) == len(header)
        (day, kind, number, subject, technician, product, channel) = fields[:7]
        actual, billed, paid_by, minutes, amount, balance, _note = fields[7:]
        assert CSV_DATE.match(day) and day == cells[0]
        assert cells[1].startswith(kind)
        assert f"{number} {subject}".strip() == cells[2]
        assert [technician, product, channel] == cells[3:6]
        assert [f"{actual} min" if actual else "", f"{billed} min" if billed else ""] == cells[6:8]
        assert paid_by == cells[8]
        assert int(minutes) == moved(cells[9])
        # A decimal comma and no thousands separator: «337,50», where the page says «337,50 kr».
        assert amount == re.sub(r"\s|kr", "", cells[10])
        assert not amount or re.fullmatch(r"\d+,\d{2}", amount), amount
        assert int(balance) == minutes_of(cells[11])


def test_top_up_log_time_then_read_filter_export_and_chart_the_statement(
    page: Page,
    staff_page: Page,
    axe_page: Page,
    live_server: str,
    console_errors: list[str],
    screenshot_dir: Path,
) -> None:
    from backend.services.coverage import hourly_amount_ore
    from backend.services.money import mva_ore
    from backend.services.statement import PAGE_SIZE

    superuser_email, technician_email, hour_price_ore, hourly_rate_ore = run_in_new_loop(
        seed_company_with_hourly_support()
    )
    hourly_billed = HOURLY_ENTRIES * 15
    hourly_ore = hourly_amount_ore(15, hourly_rate_ore)
    assert hourly_ore % 100, "the journey wants an amount with øre (the decimal comma)"
    subject = f"Inventor henger ved åpning {secrets.token_hex(3)}"

    # 1. The superuser buys 5 hours for Inventor through Checkout on the payments sandbox.
    sign_in(page, live_server, superuser_email)
    expect(page).to_have_url(f"{live_server}/portal")
    start_top_up(page, PACK_HOURS, ["Autodesk Inventor"])
    amount_ore = PACK_HOURS * hour_price_ore
    status = pay_on_sandbox(page, amount_ore + mva_ore(amount_ore))
    expect(status).to_contain_text(f"{hours_minutes(PACK_HOURS * 60)} lagt til på tidskontoen")

    # ... and opens a ticket for Inventor.
    ticket_id, number = open_ticket(
        page, live_server, "Autodesk Inventor", subject, "Inventor henger i to minutter."
    )

    # 2. A technician, in a context of their own, logs 20 minutes by phone on it (billed 30).
    sign_in(staff_page, live_server, technician_email)
    staff_page.goto(f"/staff/tickets/{ticket_id}")
    entry = log_time(staff_page, ACTUAL_MINUTES, "Telefon", "Tømte hurtigbufferen.")
    expect(entry.first.locator("td").nth(5)).to_have_text(
        f"{BILLED_MINUTES} min trukket fra tidskontoen"
    )

    # 3. The time account: 5 hours less the 30 minutes.
    page.locator("header").get_by_role("link", name="Tidskonto").click()
    expect(page).to_have_url(f"{live_server}/portal/account")
    remaining = hours_minutes(PACK_HOURS * 60 - BILLED_MINUTES)
    expect(page.locator("#account-balance .balance strong")).to_have_text(remaining)

    # 4. The statement: the debit on top, with its ticket, technician, minutes and a balance
    # after it that is what the time account has left; a full page and "Vis flere".
    page.locator("header").get_by_role("link", name="Forbruk").click()
    expect(page).to_have_url(f"{live_server}/portal/usage")
    rows = page.locator("#usage-rows tr")
    expect(rows).to_have_count(PAGE_SIZE)
    debit = rows.first.locator("td")
    expect(debit.nth(2)).to_have_text(f"{number} {subject}")
    expect(debit.nth(2).get_by_role("link", name=number)).to_have_attribute(
        "href", f"/portal/tickets/{ticket_id}"
    )
    expect(debit.nth(3)).to_have_text(TECHNICIAN)
    expect(debit.nth(4)).to_have_text("Autodesk Inventor")
    expect(debit.nth(5)).to_have_text("Telefon")
    expect(debit.nth(6)).to_have_text(f"{ACTUAL_MINUTES} min")
    expect(debit.nth(7)).to_have_text(f"{BILLED_MINUTES} min")
    expect(debit.nth(8)).to_have_text("Tidskonto")
    expect(debit.nth(9)).to_have_text(f"−{BILLED_MINUTES} min")
    expect(debit.nth(11)).to_have_text(remaining)
    expect(page.locator("#usage-next").get_by_role("button", name="Vis flere")).to_be_visible()

    # 5. Filter: this month, every product. Only the rows region is swapped (the chart and the
    # page stay), and the address keeps the filter.
    page.evaluate("window.statementJourney = 'same page'")
    chart = page.locator("#usage-chart").element_handle()
    region = page.locator("#usage-region").element_handle()
    filter_form = page.locator("#usage-filter")
    filter_form.get_by_label("Periode").select_option(label="Denne måneden")
    filter_form.get_by_role("button", name="Vis", exact=True).click()
    expect(page).to_have_url(f"{live_server}/portal/usage?period=this_month&from=&to=&product=")
    expect(page.get_by_role("link", name="Last ned som CSV")).to_have_attribute(
        "href", re.compile(r"period=this_month")
    )
    assert not region.evaluate("node => node.isConnected"), "the rows region was not swapped"
    assert chart.evaluate("node => node.isConnected"), "the chart was replaced"
    assert page.evaluate("window.statementJourney") == "same page"
    expect(rows).to_have_count(PAGE_SIZE)

    # "Vis flere" appends the rest (no row twice) and goes away on the last page.
    page.locator("#usage-next").get_by_role("button", name="Vis flere").click()
    expect(rows).to_have_count(HOURLY_ENTRIES + 2)
    expect(page.locator("#usage-next").get_by_role("button", name="Vis flere")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"period=this_month"))
    shown = statement_cells(page)
    assert shown[0][11] == remaining
    # The balance runs: each row's is the one below it plus the minutes the row moved.
    assert minutes_of(shown[-1][11]) == moved(shown[-1][9])
    for row, below in itertools.pairwise(shown):
        assert minutes_of(row[11]) == minutes_of(below[11]) + moved(row[9]), row
    hourly_rows = [row for row in shown if row[8] == "Timepris"]
    assert len(hourly_rows) == HOURLY_ENTRIES
    assert {row[4] for row in hourly_rows} == {"Autodesk Fusion"}
    assert all(nok_pattern(hourly_ore).fullmatch(row[10]) for row in hourly_rows)
    page.screenshot(path=screenshot_dir / "statement.png", full_page=True)

    # 6. The CSV for the same filter: the same rows, as Excel in Norway reads them.
    with page.expect_download() as download:
        page.get_by_role("link", name="Last ned som CSV").click()
    assert download.value.suggested_filename == "forbruk.csv"
    assert_csv_matches(Path(download.value.path()).read_bytes(), shown)

    # 7. Filter by product: Inventor is the purchase and the debit; a reload keeps it.
    filter_form.get_by_label("Produkt").select_option(label="Autodesk Inventor")
    filter_form.get_by_role("button", name="Vis", exact=True).click()
    expect(page).to_have_url(
        f"{live_server}/portal/usage?period=this_month&from=&to=&product=inventor"
    )
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(number)
    expect(rows.nth(1).locator("td").nth(9)).to_have_text(f"+{PACK_HOURS * 60} min")
    expect(page.locator("#usage-next").get_by_role("button")).to_have_count(0)
    assert page.evaluate("window.statementJourney") == "same page"
    with page.expect_download() as download:
        page.get_by_role("link", name="Last ned som CSV").click()
    assert_csv_matches(Path(download.value.path()).read_bytes(), statement_cells(page))
    page.reload()
    expect(filter_form.get_by_label("Produkt")).to_have_value("inventor")
    expect(filter_form.get_by_label("Periode")).to_have_value("this_month")
    expect(rows).to_have_count(2)

    # Last month: the company did not exist yet.
    filter_form.get_by_label("Periode").select_option(label="Forrige måned")
    filter_form.get_by_role("button", name="Vis", exact=True).click()
    expect(page).to_have_url(re.compile(r"period=last_month&from=&to=&product=inventor$"))
    expect(page.locator("#usage-region")).to_contain_text("Ingenting i denne perioden.")

    # 8. The monthly chart: an SVG with a title, each bar's figure the same as the table's.
    svg = page.locator("#usage-chart svg")
    expect(svg).to_be_visible()
    expect(svg).to_have_attribute("role", "img")
    expect(svg.locator("> title")).to_have_text("Support per måned, siste 12 måneder")
    bars = svg.locator("rect title").all_text_contents()
    table = page.locator("#usage-months")
    columns = table.locator("thead th").all_text_contents()[1:4]
    assert columns == ["Fri support", "Tidskonto", "Timepris"]
    figures = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))"
    )
    assert len(figures) == 12
    in_table = {
        f"{month}: {column} {value}"
        for month, *values in figures
        for column, value in zip(columns, values[:3], strict=True)
        if value != "0 t 0 min"
    }
    assert sorted(bars) == sorted(in_table)
    this_month = figures[-1]
    assert this_month[1:] == [
        "0 t 0 min",
        hours_minutes(BILLED_MINUTES),
        hours_minutes(hourly_billed),
        hours_minutes(BILLED_MINUTES + hourly_billed),
    ]
    assert_no_console_errors(console_errors)

    # 9. axe-core on the ticket list and on the ticket page with its time (a context without the
    # CSP, which would block axe's inline script).
    sign_in(axe_page, live_server, superuser_email)
    axe_page.locator("header").get_by_role("link", name="Saker").click()
    expect(axe_page).to_have_url(f"{live_server}/portal/tickets")
    expect(axe_page.locator("#ticket-rows tbody tr")).to_have_count(2)
    assert_accessible(axe_page, "the ticket list")
    axe_page.locator("#ticket-rows").get_by_role("link", name=number).click()
    expect(axe_page).to_have_url(f"{live_server}/portal/tickets/{ticket_id}")
    time_rows = axe_page.locator('section[aria-labelledby="time-heading"] tbody tr')
    expect(time_rows).to_have_count(1)
    assert_accessible(axe_page, "the ticket page")

    # The same two on a phone, where wide tables scroll inside the page.
    axe_page.set_viewport_size({"width": 390, "height": 844})
    assert_accessible(axe_page, "the ticket page at 390 px")
    axe_page.go_back()
    expect(axe_page).to_have_url(f"{live_server}/portal/tickets")
    expect(axe_page.locator("#ticket-rows tbody tr")).to_have_count(2)
    assert_accessible(axe_page, "the ticket list at 390 px")
