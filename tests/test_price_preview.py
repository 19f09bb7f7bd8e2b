"""The price before payment (issue 10): the plan and top-up forms show ex. MVA, MVA and the
total as products or hours change, computed by the server with the pricing Checkout charges;
without JavaScript, "Beregn pris" shows the form again with the price."""

from __future__ import annotations

import re

import pytest

from backend.services import catalog, orders, pricing
from backend.services.money import format_nok
from backend.tables import User
from tests.support import register

REGION = {"HX-Request": "true", "HX-Target": "price-preview"}


def _amounts(html: str) -> list[str]:
    region = html[html.index('<div id="price-preview"') :]
    return re.findall(r'<td class="number">(?:<strong>)?([^<]+)<', region)[:3]


@pytest.mark.parametrize(
    ("query", "kind", "hours", "products"),
    [
        ("kind=topup&hours=7&products=inventor", "topup", 7, ["inventor"]),
        ("kind=plan&products=inventor&products=vault", "plan", 0, ["inventor", "vault"]),
    ],
)
async def test_the_preview_is_what_checkout_charges(client, query, kind, hours, products):
    await catalog.seed_demo_catalog()
    form = await register(client)
    preview = await client.get(f"/portal/price?{query}", headers=REGION)
    assert "<html" not in preview.text
    quote = await pricing.quote(0, kind, hours, products)
    assert _amounts(preview.text) == [
        format_nok(v) for v in (quote.amount_ore, quote.mva_ore, quote.total_ore)
    ]
    # The order placed from the same choices (what POST /portal/orders does before Checkout)
    # charges exactly that.
    superuser = await User.objects().get(User.email == form["email"])
    fields = {"kind": kind, "products": products, "hours": str(hours) if hours else ""}
    placed = await orders.place_order(superuser, fields)
    assert (placed.amount_ore, placed.total_ore) == (quote.amount_ore, quote.total_ore)


async def test_without_javascript_beregn_pris_shows_the_form_with_its_price(client):
    await catalog.seed_demo_catalog()
    await register(client)
    page = (await client.get("/portal/price?kind=topup&hours=3&products=fusion")).text
    assert '<form id="topup-form"' in page and "Beregn pris" in page
    assert ('value="3"' in page and 'value="fusion"\n        checked' in page) or "checked" in page
    assert len(_amounts(page)) == 3


async def test_a_choice_that_cannot_be_priced_says_why(client):
    await catalog.seed_demo_catalog()
    await register(client)
    preview = await client.get(
        "/portal/price?kind=topup&hours=500&products=inventor", headers=REGION
    )
    assert "Velg et helt antall timer fra 1 til 200." in preview.text
    nothing = await client.get("/portal/price?kind=plan", headers=REGION)
    assert "Velg minst ett produkt." in nothing.text
    odd = await client.get("/portal/price?kind=%00&hours=%C2%B2&products=" + "x" * 60)
    assert odd.status_code == 200


async def test_the_forms_show_the_price_of_what_they_hold(client):
    await catalog.seed_demo_catalog()
    await register(client)
    topup = (await client.get("/portal/topup")).text
    assert 'id="price-preview"' in topup and 'hx-get="/portal/price"' in topup
    plan = (await client.get("/portal/plan")).text
    assert 'id="price-preview"' in plan
