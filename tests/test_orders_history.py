"""Order history and the receipt (issue 10): every order with what it was, its amount incl.
MVA and status, in pages; the receipt names seller and buyer and adds up ex. MVA, MVA and
the total without claiming that prices are ex. MVA."""

from __future__ import annotations

import os
import re

from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.config import load_settings
from backend.services import catalog
from backend.tables import Company
from tests.support import login, make_company, make_order, register

SELLER = {
    "SELLER_NAME": "Brødrene Johnsen SALEIMPEX AS",
    "SELLER_ORG_NUMBER": "923609016",
    "SELLER_ADDRESS": "Industrivegen 1, 2069 Jessheim",
}


async def test_the_order_history_lists_every_order_in_pages(client, other_client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = (await Company.select(Company.id).where(Company.name == form["company_name"]))[-1][
        "id"
    ]
    orders = [await make_order(company_id, amount=100_000 * (n + 1)) for n in range(27)]
    pending = await make_order(company_id, kind="plan", status="pending", amount=900_000)

    first = (await client.get("/portal/orders")).text
    ids = re.findall(r'<td><a href="/portal/orders/(\d+)">', first)
    assert [int(i) for i in ids] == [pending.id] + [o.id for o in orders[::-1][:24]]
    assert "Fri support 6 mnd: Autodesk Inventor, Autodesk Vault" in first
    assert "Tidskonto 5 t: Autodesk Inventor, Autodesk Vault" in first
    assert "11 250,00 kr" in first.replace("\xa0", " ")  # 9 000 kr + 25 % MVA
    assert f'href="/portal/orders/{orders[-1].id}/receipt"' in first
    assert f'href="/portal/orders/{pending.id}/receipt"' not in first
    older = re.search(r'href="(/portal/orders\?older_than=\d+)"', first).group(1)  # type: ignore[union-attr]
    await make_order(company_id)  # a new one does not shift the next page
    second = (await client.get(older)).text
    rest = [int(i) for i in re.findall(r'<td><a href="/portal/orders/(\d+)">', second)]
    assert rest == [o.id for o in orders[:3][::-1]]
    assert "Eldre bestillinger" not in second

    # Another company sees none of them.
    await register(other_client)
    assert "Ingen bestillinger ennå." in (await other_client.get("/portal/orders")).text


async def test_the_order_history_in_english_names_the_plan_as_not_free(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = (await Company.select(Company.id).where(Company.name == form["company_name"]))[-1][
        "id"
    ]
    await make_order(company_id, kind="plan")
    await client.get("/language/en?next=/portal/orders")
    page = (await client.get("/portal/orders")).text
    assert "Unlimited support (Fri support), 6 months: Autodesk Inventor, Autodesk Vault" in page
    assert "Free support" not in page


async def test_the_receipt_names_seller_and_buyer_and_adds_up(tmp_path):
    await catalog.seed_demo_catalog()
    settings = load_settings({**os.environ, **SELLER, "PORTAL_VAR_DIR": str(tmp_path)})
    company_id, email = await make_company("Kjøper Mekanikk AS")
    order = await make_order(company_id, amount=550_000)
    async with AsyncTestClient(app=create_app(settings, db_pool=False)) as browser:
        await login(browser, email)
        receipt = (await browser.get(f"/portal/orders/{order.id}/receipt")).text.replace(
            "\xa0", " "
        )
    company = await Company.objects().get(Company.id == company_id)
    seller = receipt[receipt.index('id="seller-title"') : receipt.index('id="buyer-title"')]
    assert "Brødrene Johnsen SALEIMPEX AS" in seller
    assert "Org.nr. 923 609 016 MVA" in seller and "Industrivegen 1, 2069 Jessheim" in seller
    buyer = receipt[receipt.index('id="buyer-title"') : receipt.index('id="receipt-lines"')]
    assert "Kjøper Mekanikk AS" in buyer and company.city in buyer
    assert f"Bestilling nr. {order.id}" in receipt
    assert "5 500,00 kr" in receipt and "1 375,00 kr" in receipt and "6 875,00 kr" in receipt
    assert "Mva 25 %" in receipt
    assert "eks. mva." not in receipt.lower().replace("beløp eks. mva", "")
    assert "data-print" in receipt


async def test_production_needs_the_sellers_details(tmp_path):
    import pytest

    from backend.config import ConfigError
    from tests.support import PRODUCTION_ENV

    environ = {k: v for k, v in PRODUCTION_ENV.items() if not k.startswith("SELLER_")}
    with pytest.raises(ConfigError, match="SELLER_NAME, SELLER_ORG_NUMBER, SELLER_ADDRESS"):
        load_settings(environ)
    with pytest.raises(ConfigError, match="SELLER_ORG_NUMBER"):
        load_settings({**PRODUCTION_ENV, "SELLER_ORG_NUMBER": "123 456 789"})


def _pdf_text(body: bytes) -> str:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(body))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text.replace("\xa0", " ")


async def test_the_receipt_as_a_pdf_says_what_the_page_says(tmp_path):
    await catalog.seed_demo_catalog()
    settings = load_settings({**os.environ, **SELLER, "PORTAL_VAR_DIR": str(tmp_path)})
    company_id, email = await make_company("Kjøper Ærlig Øvre Åsen AS")
    order = await make_order(company_id, amount=550_000)
    async with AsyncTestClient(app=create_app(settings, db_pool=False)) as browser:
        await login(browser, email)
        page = (await browser.get(f"/portal/orders/{order.id}/receipt")).text
        assert f'href="/portal/orders/{order.id}/receipt.pdf"' in page and "Last ned PDF" in page
        response = await browser.get(f"/portal/orders/{order.id}/receipt.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="kvittering-{order.id}.pdf"'
    )
    assert response.content.startswith(b"%PDF-")
    text = _pdf_text(response.content)
    company = await Company.objects().get(Company.id == company_id)
    assert "Kvittering" in text and f"Bestilling nr. {order.id}" in text
    assert "Brødrene Johnsen SALEIMPEX AS" in text
    assert "Org.nr. 923 609 016 MVA" in text and "Industrivegen 1, 2069 Jessheim" in text
    assert "Kjøper Ærlig Øvre Åsen AS" in text
    assert f"{company.postal_code} {company.city}" in text
    assert "Tidskonto 5 t: Autodesk Inventor, Autodesk Vault" in text
    assert "Beløp eks. mva" in text and "Mva 25 %" in text and "Totalt" in text
    assert "5 500,00 kr" in text and "1 375,00 kr" in text and "6 875,00 kr" in text
    assert "Betalt med kort via Stripe." in text


async def test_the_receipt_pdf_takes_any_name_and_address_a_company_may_have(tmp_path):
    """Letters outside latin-1 (what the PDF core fonts hold), a name as long as registration
    allows and an address without a space to wrap at: the PDF still comes, with all of it."""
    await catalog.seed_demo_catalog()
    settings = load_settings({**os.environ, **SELLER, "PORTAL_VAR_DIR": str(tmp_path)})
    name = ("Łódź Ωmega Čeština Ğüneş Mekanikk " * 6)[:196] + " AS"
    company_id, email = await make_company(name)
    address = "Langgata" * 25  # 200 characters
    await Company.update({Company.address: address}).where(Company.id == company_id)
    order = await make_order(company_id)
    async with AsyncTestClient(app=create_app(settings, db_pool=False)) as browser:
        await login(browser, email)
        response = await browser.get(f"/portal/orders/{order.id}/receipt.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    text = " ".join(_pdf_text(response.content).split())
    assert "Łódź Ωmega Čeština Ğüneş Mekanikk" in text
    assert text.replace(" ", "").count("Langgata") == 25


async def test_no_receipt_for_another_companys_order_or_an_unpaid_one(client, other_client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = (await Company.select(Company.id).where(Company.name == form["company_name"]))[-1][
        "id"
    ]
    paid = await make_order(company_id)
    unpaid = await make_order(company_id, kind="plan", status="pending")
    assert (await client.get(f"/portal/orders/{paid.id}/receipt.pdf")).status_code == 200
    for path in ("/receipt", "/receipt.pdf"):
        assert (await client.get(f"/portal/orders/{unpaid.id}{path}")).status_code == 404
    await register(other_client)
    for path in ("/receipt", "/receipt.pdf"):
        response = await other_client.get(f"/portal/orders/{paid.id}{path}")
        assert response.status_code == 404
        assert "application/pdf" not in response.headers.get("content-type", "")


async def test_the_receipt_pdf_in_english(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = (await Company.select(Company.id).where(Company.name == form["company_name"]))[-1][
        "id"
    ]
    order = await make_order(company_id, kind="plan")
    await client.get("/language/en?next=/portal")
    page = (await client.get(f"/portal/orders/{order.id}/receipt")).text
    assert "Download PDF" in page and ">Menu</summary>" in page
    text = _pdf_text((await client.get(f"/portal/orders/{order.id}/receipt.pdf")).content)
    assert "Unlimited support (Fri support), 6 months" in text
    assert "Receipt" in text and "Kvittering" not in text
