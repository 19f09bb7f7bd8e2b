"""The time account page, /portal/account (issue 10): what is left with a bar, each lot with
what it covers and its last usable day, expired and used-up lots folded away, and the latest
movements of minutes with their ticket or reason."""

from __future__ import annotations

import datetime
import re

from backend.services import catalog, clock, coverage, ledger
from backend.services.users import create_staff
from backend.tables import Company, User
from tests.support import PASSWORD, make_ticket, new_email, register


async def _company_id(name: str) -> int:
    return (await Company.select(Company.id).where(Company.name == name))[-1]["id"]


async def _credit(company_id: int, minutes: int, expires_on: datetime.date, key: str, codes):
    await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=expires_on,
        product_codes=codes,
        key=f"{key}-{company_id}",
        cause=ledger.Cause(type="order"),
    )


async def _history(company_id: int) -> int:
    """An open lot (2 h for Inventor and Vault, 45 min used on a ticket), one used up, one
    expired, and an adjustment with a reason. Returns the ticket's id."""
    today = clock.today()
    next_year = today + datetime.timedelta(days=300)
    await _credit(company_id, 120, next_year, "open", ["inventor", "vault"])
    await _credit(company_id, 60, next_year, "used", ["acad-mech"])
    await _credit(company_id, 90, today - datetime.timedelta(days=3), "old", ["inventor"])
    await ledger.debit(
        company_id=company_id,
        minutes=60,
        on_date=today,
        key=f"use-up-{company_id}",
        cause=ledger.Cause(type="admin", note="Brukt opp"),
        product_code="acad-mech",
    )
    ticket = await make_ticket(company_id, "Tegningen henger", product="inventor")
    technician = await User.objects().get(User.email == TECHNICIAN)
    await coverage.record_time_entry(
        ticket=ticket,
        technician=technician,
        actual=40,
        performed_on=today,
        channel="phone",
        note="",
        key=f"account-page-{ticket.id}",
    )
    await ledger.adjust(
        company_id=company_id,
        minutes=-15,
        reason="Dobbelt registrert telefon",
        user_id=technician.id,
        key=f"adjust-{company_id}",
        today=today,
    )
    return ticket.id


TECHNICIAN = new_email("tekniker-konto")


async def _technician() -> None:
    if not await User.exists().where(User.email == TECHNICIAN):
        await create_staff(
            email=TECHNICIAN, name="Tor Tekniker", role="technician", password=PASSWORD
        )


async def test_the_account_page_shows_what_is_left_lot_by_lot(client):
    await catalog.seed_demo_catalog()
    await _technician()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    ticket_id = await _history(company_id)

    page = (await client.get("/portal/account")).text
    # 120 − 45 (40 minutes rounded up to 45) − 15 (adjustment) = 60 minutes left.
    assert '<p class="balance"><strong>1 t 0 min</strong>' in page
    assert re.search(r'<progress value="60" max="120"', page)
    opened = page[page.index('id="open-lots"') : page.index('id="closed-lots"')]
    last_day = clock.today() + datetime.timedelta(days=299)
    assert "Autodesk Inventor, Autodesk Vault" in opened
    assert f"til og med {last_day:%d.%m.%Y}" in opened
    assert "AutoCAD Mechanical" not in opened
    folded = page[page.index('<details id="closed-lots">') : page.index('id="latest-entries"')]
    assert "Utløpte og brukte kjøp (2)" in folded
    assert "utløpt" in folded and "brukt opp" in folded
    entries = page[page.index('id="latest-entries"') :]
    assert f'href="/portal/tickets/{ticket_id}"' in entries and "Tegningen henger" in entries
    assert "Justering: Dobbelt registrert telefon" in entries
    assert "−0 t 45 min" in entries and "+2 t 0 min" in entries
    assert 'href="/portal/topup"' in page


async def test_the_nav_link_tidskonto_goes_to_the_account_page(client):
    await register(client)
    dashboard = (await client.get("/portal")).text
    assert '<a href="/portal/account">Tidskonto</a>' in dashboard


async def test_a_company_sees_only_its_own_lots(client, other_client):
    await catalog.seed_demo_catalog()
    mine = await register(client)
    theirs = await register(other_client)
    await _credit(
        await _company_id(theirs["company_name"]),
        600,
        clock.today() + datetime.timedelta(days=100),
        "theirs",
        ["inventor"],
    )
    page = (await client.get("/portal/account")).text
    assert '<p class="balance"><strong>0 t 0 min</strong>' in page
    assert "10 t 0 min" not in page
    assert "Ingen timer igjen på kontoen." in page
    assert mine["company_name"] not in (await other_client.get("/portal/account")).text


async def test_the_account_page_in_english(client):
    await catalog.seed_demo_catalog()
    await _technician()
    form = await register(client)
    await _history(await _company_id(form["company_name"]))
    await client.get("/language/en?next=/portal/account")
    page = (await client.get("/portal/account")).text
    assert "Time account" in page
    assert "Adjustment: Dobbelt registrert telefon" in page
    assert "Expired and used-up purchases (2)" in page
    assert "til og med" not in page


async def test_staff_and_anonymous_visitors_do_not_get_the_account_page(client):
    anonymous = await client.get("/portal/account", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


async def test_every_page_names_a_lots_last_usable_day_til_og_med(client):
    """A lot is usable on the days before its expiry date: pages name the last of them, "til og
    med", as they do for a plan (the dashboard used to show the first day it no longer was)."""
    await catalog.seed_demo_catalog()
    form = await register(client)
    expires_on = clock.today() + datetime.timedelta(days=200)
    await _credit(await _company_id(form["company_name"]), 60, expires_on, "last-day", ["fusion"])
    last_day = f"{expires_on - datetime.timedelta(days=1):%d.%m.%Y}"
    dashboard = (await client.get("/portal")).text
    assert "Gyldig til og med" in dashboard and f"<td>{last_day}</td>" in dashboard
    assert f"{expires_on:%d.%m.%Y}" not in dashboard
    account = (await client.get("/portal/account")).text
    assert f"til og med {last_day}" in account


async def test_the_topup_form_says_the_hours_cover_the_products_chosen(client):
    await catalog.seed_demo_catalog()
    await register(client)
    page = (await client.get("/portal/topup")).text
    assert "<legend>Produkter tidskontoen dekker</legend>" in page
    assert "Timene kan bare brukes til support på produktene du velger her." in page
    await client.get("/language/en?next=/portal/topup")
    english = (await client.get("/portal/topup")).text
    assert "<legend>Products the time account covers</legend>" in english
