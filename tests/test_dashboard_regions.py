"""The dashboard's regions (issue 10): each is a partial that refreshes itself. Asked for alone
(htmx, HX-Target = its id) it is served alone; the whole page's regions listen for the events
that the responses of actions elsewhere announce (backend/web/events.py)."""

from __future__ import annotations

import datetime
import re

from backend.controllers.portal import DASHBOARD_REGIONS
from backend.services import agreements, catalog, clock, ledger
from backend.tables import Company, Ticket
from backend.web.events import BALANCE_CHANGED, PAGE_SHOWN, TICKETS_CHANGED
from tests.support import make_ticket, register

LISTENS = {
    "warnings": BALANCE_CHANGED,
    "plan-summary": BALANCE_CHANGED,
    "time-account": BALANCE_CHANGED,
    "charges-summary": BALANCE_CHANGED,
    "recent-orders": BALANCE_CHANGED,
    "open-tickets": TICKETS_CHANGED,
    # Update advisories for the covered products: a purchase changes what is covered.
    "advisories-summary": BALANCE_CHANGED,
}


def _region_ask(region: str) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Target": region}


async def _company_id(name: str) -> int:
    return (await Company.select(Company.id).where(Company.name == name))[-1]["id"]


async def test_a_region_asked_for_alone_is_only_that_region(client):
    await catalog.seed_demo_catalog()
    await register(client)
    assert set(DASHBOARD_REGIONS) == set(LISTENS)
    for region in DASHBOARD_REGIONS:
        response = await client.get("/portal", headers=_region_ask(region))
        assert response.status_code == 200
        html = response.text.strip()
        assert re.match(rf'<(article|section) id="{region}"', html), html[:200]
        assert "<html" not in html and "<nav" not in html and "<title" not in html
        others = set(re.findall(r' id="([a-z-]+)"', html)) & set(DASHBOARD_REGIONS)
        assert others == {region}
    # htmx 4 names the target with its tag.
    alone = await client.get("/portal", headers=_region_ask("article#time-account"))
    assert alone.text.strip().startswith('<article id="time-account"')


async def test_the_dashboards_regions_listen_for_what_changes_them(client):
    await catalog.seed_demo_catalog()
    await register(client)
    page = (await client.get("/portal")).text
    for region, event in LISTENS.items():
        tag = re.search(rf'<(?:article|section) id="{region}"[^>]*>', page)
        assert tag, region
        opening = tag.group(0)
        assert 'hx-get="/portal"' in opening and 'hx-target="this"' in opening
        assert 'hx-swap="outerHTML"' in opening
        trigger = re.search(r'hx-trigger="([^"]+)"', opening).group(1)  # type: ignore[union-attr]
        assert {part.strip() for part in trigger.split(",")} == {
            f"{event} from:body",
            f"{PAGE_SHOWN} from:body",
        }


async def test_a_region_shows_what_changed_since_the_page_was_loaded(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    before = (await client.get("/portal", headers=_region_ask("time-account"))).text
    assert "<strong>0 t 0 min</strong>" in before
    await ledger.credit_lot(
        company_id=company_id,
        minutes=150,
        expires_on=agreements.add_years(clock.today(), 1),
        product_codes=["inventor"],
        key=f"regions{company_id}",
        cause=ledger.Cause(type="order"),
    )
    after = (await client.get("/portal", headers=_region_ask("time-account"))).text
    assert "<strong>2 t 30 min</strong>" in after

    assert (
        "Ingen åpne saker."
        in (await client.get("/portal", headers=_region_ask("open-tickets"))).text
    )
    ticket: Ticket = await make_ticket(company_id)
    tickets = (await client.get("/portal", headers=_region_ask("open-tickets"))).text
    assert ticket.subject in tickets

    soon = clock.today() + datetime.timedelta(days=10)
    await ledger.credit_lot(
        company_id=company_id,
        minutes=30,
        expires_on=soon,
        product_codes=["inventor"],
        key=f"regions-soon{company_id}",
        cause=ledger.Cause(type="order"),
    )
    shown = (await client.get("/portal", headers=_region_ask("warnings"))).text
    assert 'class="warning"' in shown


async def test_opening_a_ticket_tells_the_page_the_tickets_changed(client):
    from tests.support import csrf_token

    await catalog.seed_demo_catalog()
    await register(client)
    token = await csrf_token(client, "/portal/tickets/new")
    response = await client.post(
        "/portal/tickets",
        data={
            "subject": "Skisse låser seg",
            "description": "Inventor henger når jeg lagrer.",
            "product": "inventor",
            "_csrf_token": token,
        },
        headers={"HX-Request": "true", "HX-Target": "main"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["hx-trigger"] == TICKETS_CHANGED
