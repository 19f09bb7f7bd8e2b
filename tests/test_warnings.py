"""Warnings on the dashboard (SPEC §7, issue 10): little time left, a lot or the plan ending
within 30 days, hourly support not paid."""

from __future__ import annotations

import datetime

from backend.services import agreements, catalog, clock, coverage, ledger, warnings
from backend.services.users import create_staff
from backend.tables import Agreement, AgreementProduct, Company
from tests.support import PASSWORD, make_ticket, new_email, register


async def _company_id(name: str) -> int:
    return (await Company.select(Company.id).where(Company.name == name))[-1]["id"]


async def _credit(company_id: int, minutes: int, days: int, key: str) -> None:
    await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=clock.today() + datetime.timedelta(days=days),
        product_codes=["inventor"],
        key=f"{key}-{company_id}",
        cause=ledger.Cause(type="order"),
    )


def _warnings(page: str) -> str:
    start = page.index('<section id="warnings"')
    return page[start : page.index("</section>", start)]


async def test_a_company_with_plenty_of_time_and_nothing_owed_gets_no_warning(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    await _credit(await _company_id(form["company_name"]), 600, 200, "plenty")
    assert 'class="warning"' not in _warnings((await client.get("/portal")).text)


async def test_low_balance_and_a_lot_ending_within_30_days(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    await _credit(company_id, 45, 20, "ending")
    shown = _warnings((await client.get("/portal")).text)
    last_day = clock.today() + datetime.timedelta(days=19)
    assert "Lite tid igjen på tidskontoen: 0 t 45 min." in shown
    assert f"0 t 45 min på tidskontoen kan brukes til og med {last_day:%d.%m.%Y}" in shown
    assert 'href="/portal/topup"' in shown


async def test_a_lot_ending_in_31_days_and_60_minutes_left_are_not_warned(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    await _credit(await _company_id(form["company_name"]), 60, 31, "later")
    assert 'class="warning"' not in _warnings((await client.get("/portal")).text)


async def test_the_plan_ending_and_charges_outstanding(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    today = clock.today()
    ends_on = today + datetime.timedelta(days=10)
    agreement = Agreement(
        company=company_id, starts_on=today - datetime.timedelta(days=170), ends_on=ends_on
    )
    await agreement.save()
    await AgreementProduct(agreement=agreement.id, product_code="inventor").save()
    technician = await create_staff(
        email=new_email("tekniker-varsel"), name="Tor", role="technician", password=PASSWORD
    )
    ticket = await make_ticket(company_id, "Uten avtale", product="fusion")
    await coverage.record_time_entry(
        ticket=ticket,
        technician=technician,
        actual=30,
        performed_on=today,
        channel="phone",
        note="",
        key=f"warn-{ticket.id}",
    )
    shown = _warnings((await client.get("/portal")).text).replace("\xa0", " ")
    assert f"Fri support gjelder til og med {ends_on:%d.%m.%Y}." in shown
    assert "Timebasert support er ikke betalt:" in shown and 'href="/portal/charges"' in shown
    # A renewal already bought moves the end: no warning for a plan that goes on.
    renewal = Agreement(
        company=company_id,
        starts_on=ends_on + datetime.timedelta(days=1),
        ends_on=agreements.add_months(ends_on, 6),
    )
    await renewal.save()
    await AgreementProduct(agreement=renewal.id, product_code="inventor").save()
    assert "Fri support gjelder til og med" not in _warnings((await client.get("/portal")).text)


def test_ends_soon_counts_30_days_from_today():
    today = datetime.date(2026, 12, 1)
    assert warnings.ends_soon(today, today)
    assert warnings.ends_soon(today + datetime.timedelta(days=29), today)
    assert not warnings.ends_soon(today + datetime.timedelta(days=30), today)
    assert not warnings.ends_soon(today - datetime.timedelta(days=1), today)


async def test_a_member_is_told_of_charges_outstanding_but_not_asked_to_pay(client, other_client):
    """Only the superuser pays (SPEC §1): a member's warning links to the charges to read."""
    from tests.test_tickets import signed_in_member

    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    technician = await create_staff(
        email=new_email("tekniker-medlem"), name="Tor", role="technician", password=PASSWORD
    )
    ticket = await make_ticket(company_id, "Uten avtale", product="fusion")
    await coverage.record_time_entry(
        ticket=ticket,
        technician=technician,
        actual=30,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"warn-member-{ticket.id}",
    )
    assert "Se og betal" in _warnings((await client.get("/portal")).text)
    await signed_in_member(other_client, company_id)
    region = {"HX-Request": "true", "HX-Target": "warnings"}
    for shown in (
        _warnings((await other_client.get("/portal")).text),
        (await other_client.get("/portal", headers=region)).text,
    ):
        assert "Timebasert support er ikke betalt:" in shown
        assert 'href="/portal/charges"' in shown and "Se og betal" not in shown
