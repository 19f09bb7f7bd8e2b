"""A ticket says, before any time is logged, how support on it will be paid (issue 10): by
the plan, from the time account or by the hour, as the debit then decides (SPEC §2)."""

from __future__ import annotations

import datetime

import pytest

from backend.services import catalog, clock, coverage, ledger
from backend.services.money import format_nok
from backend.services.users import create_staff
from backend.tables import Agreement, AgreementProduct, Company, PriceList
from tests.support import PASSWORD, make_ticket, new_email, register

SAID = {
    "plan": "Support på denne saken dekkes av Fri support.",
    "account": "Support på denne saken trekkes fra tidskontoen",
    "hourly": "Support på denne saken faktureres etter timesatsen på",
}


async def _company(client) -> int:
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = (await Company.select(Company.id).where(Company.name == form["company_name"]))[-1][
        "id"
    ]
    today = clock.today()
    agreement = Agreement(
        company=company_id, starts_on=today, ends_on=today + datetime.timedelta(days=180)
    )
    await agreement.save()
    await AgreementProduct(agreement=agreement.id, product_code="inventor").save()
    await ledger.credit_lot(
        company_id=company_id,
        minutes=120,
        expires_on=today + datetime.timedelta(days=300),
        product_codes=["vault"],
        key=f"cover-{company_id}",
        cause=ledger.Cause(type="order"),
    )
    return company_id


@pytest.mark.parametrize(
    ("product", "paid_by"), [("inventor", "plan"), ("vault", "account"), ("fusion", "hourly")]
)
async def test_the_ticket_says_how_support_is_paid_and_the_debit_agrees(client, product, paid_by):
    company_id = await _company(client)
    ticket = await make_ticket(company_id, "Hvem betaler?", product=product)
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    said = page[
        page.index('<p id="ticket-coverage">') : page.index(
            "</p>", page.index('id="ticket-coverage"')
        )
    ]
    assert SAID[paid_by] in said
    assert [text for kind, text in SAID.items() if kind != paid_by and text in said] == []
    if paid_by == "hourly":
        rate = (await PriceList.objects().first()).hourly_rate_ore
        assert f"{format_nok(rate)}/t eks. mva" in said
    technician = await create_staff(
        email=new_email("tekniker-dekning"), name="Tor", role="technician", password=PASSWORD
    )
    entry = await coverage.record_time_entry(
        ticket=ticket,
        technician=technician,
        actual=30,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"cover-{ticket.id}",
    )
    assert entry.coverage == paid_by
