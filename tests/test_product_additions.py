"""Adding covered products to an active agreement (SPEC §2; issue 12): to the plan in force,
priced pro rata by the purchase's own pricing and paid through Checkout, added exactly once;
to the time account, free and idempotent. Through the served app (in process), against the
payments sandbox whose webhooks the tests deliver themselves (tests/test_payment_trust.py)."""

from __future__ import annotations

import datetime
import secrets
from typing import Any

import pytest
import stripe

from backend.services import agreements, catalog, clock, coverage, ledger, pricing
from backend.services.money import format_nok, mva_ore
from backend.services.users import hash_password
from backend.tables import (
    Agreement,
    AgreementProduct,
    AuditEntry,
    Coverage,
    HourlyCharge,
    Lot,
    LotProduct,
    Order,
    Product,
    Role,
    User,
)
from tests.support import PASSWORD, login, make_company, make_ticket, new_email, post_form
from tests.test_checkout import complete
from tests.test_payment_trust import deliver, held, place, refunded_on  # noqa: F401

PLAN_PRICE = catalog.DEMO_PRICES["plan_price_per_product_ore"]


async def company_with_plan(days_ago: int = 40, products: tuple[str, ...] = ("inventor",)):
    """A company whose plan period started `days_ago` days ago, covering `products`: (company
    id, superuser e-mail, the period)."""
    await catalog.seed_demo_catalog()
    company_id, email = await make_company()
    starts_on, ends_on = agreements.plan_period(clock.today() - datetime.timedelta(days=days_ago))
    plan = await agreements.create_plan(
        company_id=company_id, product_codes=products, starts_on=starts_on, ends_on=ends_on
    )
    return company_id, email, plan


async def plan_codes(plan_id: int) -> list[str]:
    rows = await AgreementProduct.select(AgreementProduct.product_code).where(
        AgreementProduct.agreement == plan_id
    )
    return sorted(row["product_code"] for row in rows)


async def superuser_of(company_id: int) -> User:
    return await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )


async def log_time(company_id: int, product: str, key: str) -> Any:
    ticket = await make_ticket(company_id, product=product)
    return await coverage.record_time_entry(
        ticket=ticket,
        technician=await superuser_of(company_id),
        actual=20,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"{key}-{ticket.id}",
    )


async def charge_of(sandbox: stripe.StripeClient, session_id: str) -> tuple[str, str]:
    """(payment intent, charge) of a paid session."""
    session = await sandbox.v1.checkout.sessions.retrieve_async(session_id)
    intent = await sandbox.v1.payment_intents.retrieve_async(session.payment_intent)
    return session.payment_intent, intent.latest_charge


# --- the price ------------------------------------------------------------------------------


def test_the_pro_rata_price_rounds_down_to_whole_ore():
    """181 days in the period, 3 left: 4 500 kr × 3 / 181 = 74,5856… kr. Rounded down (the
    customer's way), 7 458 øre; half up would be 7 459."""
    offer = catalog.Offer(
        products=[catalog.OfferedProduct(id=1, code="vault", name="Autodesk Vault", position=0)],
        prices=catalog.Prices(
            id=1,
            plan_price_per_product_ore=450_000,
            prepaid_hour_price_ore=110_000,
            hourly_rate_ore=135_000,
            topup_packs="5",
        ),
    )
    addition = pricing.PlanAddition(
        agreement_id=1,
        starts_on=datetime.date(2026, 1, 1),
        ends_on=datetime.date(2026, 6, 30),
        covered=frozenset({"inventor"}),
        today=datetime.date(2026, 6, 28),
    )
    assert (addition.days_in_period, addition.days_left) == (181, 3)
    quote = pricing.price(offer, "plan_addition", "", ["vault"], addition)
    assert quote.amount_ore == 7458
    # The last day alone, and the whole period (the first day): the same formula.
    last_day = pricing.PlanAddition(
        1, addition.starts_on, addition.ends_on, frozenset(), addition.ends_on
    )
    assert pricing.price(offer, "plan_addition", "", ["vault"], last_day).amount_ore == 2486
    first_day = pricing.PlanAddition(
        1, addition.starts_on, addition.ends_on, frozenset(), addition.starts_on
    )
    assert pricing.price(offer, "plan_addition", "", ["vault"], first_day).amount_ore == 450_000
    # The whole period's price is what buying a plan costs: one pricing.
    assert pricing.price(offer, "plan", "", ["vault"]).amount_ore == 450_000
    # A plan imported with its original dates, two years left of it: priced per 6 months
    # (181 days from its start), not by its own length.
    imported = pricing.PlanAddition(
        1,
        datetime.date(2026, 1, 1),
        datetime.date(2028, 6, 29),
        frozenset(),
        datetime.date(2026, 6, 30),
    )
    assert (imported.days_in_period, imported.days_left) == (181, 731)
    long_one = pricing.price(offer, "plan_addition", "", ["vault"], imported).amount_ore
    assert long_one == 450_000 * 731 // 181  # about four 6-month periods


async def test_the_price_shown_is_the_formula_and_what_checkout_charges(held):  # noqa: F811
    client, sandbox = held
    _, email, plan = await company_with_plan(days_ago=40)
    await login(client, email)
    today = clock.today()
    days_in_period = (plan.ends_on - plan.starts_on).days + 1
    days_left = (plan.ends_on - today).days + 1
    expected = 2 * PLAN_PRICE * days_left // days_in_period

    page = await client.get("/portal/plan/products")
    assert page.status_code == 200
    assert 'value="vault"' in page.text and 'value="inventor"' not in page.text
    assert f"de {days_left} dagene som er igjen" in page.text
    assert f"med {days_in_period} dager per 6 måneder" in page.text
    shown = await client.get(
        "/portal/price",
        params={"kind": "plan_addition", "agreement": plan.id, "products": ["vault", "fusion"]},
        headers={"HX-Request": "true", "HX-Target": "price-preview"},
    )
    assert f"{days_left} / {days_in_period}" in shown.text
    assert format_nok(expected + mva_ore(expected)) in shown.text
    # Without JavaScript, "Beregn pris" shows the whole form again with the same price.
    whole = await client.get(
        "/portal/price",
        params={"kind": "plan_addition", "agreement": plan.id, "products": ["vault", "fusion"]},
    )
    assert 'id="plan-products-form"' in whole.text
    assert format_nok(expected + mva_ore(expected)) in whole.text

    order_id, session_id = await place(
        client, kind="plan_addition", agreement=str(plan.id), products=["vault", "fusion"]
    )
    order = await Order.objects().get(Order.id == order_id)
    assert (order.kind, order.agreement, order.amount_ore) == ("plan_addition", plan.id, expected)
    session = await sandbox.v1.checkout.sessions.retrieve_async(session_id)
    assert session.amount_total == expected + mva_ore(expected) == order.total_ore


# --- paying: added exactly once -----------------------------------------------------------


async def test_paying_adds_the_product_once_and_support_on_it_is_covered(held):  # noqa: F811
    client, sandbox = held
    company_id, email, plan = await company_with_plan()
    await login(client, email)
    before = await log_time(company_id, "vault", "before")
    assert before.coverage == Coverage.hourly.value

    order_id, session_id = await place(
        client, kind="plan_addition", agreement=str(plan.id), products=["vault"]
    )
    await complete(sandbox, session_id, "paid")
    # The success page and the webhook both report it, and the webhook comes again.
    page = await client.get(f"/portal/orders/{order_id}?session_id={session_id}")
    assert "Betalt" in page.text
    assert f"{clock.today():%d.%m.%Y}–{plan.ends_on:%d.%m.%Y}" in page.text
    for expected in ("handled", "duplicate"):
        answer = await deliver(client, sandbox, session_id, "checkout.session.completed")
        assert answer.json()["result"] == expected
    assert await plan_codes(plan.id) == ["inventor", "vault"]
    order = await Order.objects().get(Order.id == order_id)
    assert (order.status, order.review_reason) == ("paid", "")

    after = await log_time(company_id, "vault", "after")
    assert (after.coverage, after.account_minutes, after.hourly_minutes) == ("plan", 0, 0)
    assert not await HourlyCharge.exists().where(HourlyCharge.time_entry == after.id)
    # Only from the day it was paid: support given before is not covered after the fact.
    yesterday = clock.today() - datetime.timedelta(days=1)
    assert await coverage.expected_coverage(company_id, "vault", yesterday) == Coverage.hourly
    dashboard = await client.get("/portal")
    assert "Autodesk Inventor, Autodesk Vault" in dashboard.text
    receipt = await client.get(f"/portal/orders/{order_id}/receipt")
    assert "Fri support, lagt til for resten av perioden: Autodesk Vault" in receipt.text
    assert f"Periode: {clock.today():%d.%m.%Y}–{plan.ends_on:%d.%m.%Y}" in receipt.text
    pdf = await client.get(f"/portal/orders/{order_id}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_a_second_order_for_the_same_product_adds_no_row_and_is_refunded(held):  # noqa: F811
    """Two tabs ordered the same product; both were paid. The second adds nothing: flagged
    and its payment refunded in full."""
    client, sandbox = held
    _, email, plan = await company_with_plan()
    await login(client, email)
    fields = {"kind": "plan_addition", "agreement": str(plan.id), "products": "vault"}
    first_id, first_session = await place(client, **fields)
    second_id, second_session = await place(client, **fields)
    for session_id in (first_session, second_session):
        await complete(sandbox, session_id, "paid")
        await deliver(client, sandbox, session_id, "checkout.session.completed")
    assert await plan_codes(plan.id) == ["inventor", "vault"]
    first = await Order.objects().get(Order.id == first_id)
    second = await Order.objects().get(Order.id == second_id)
    assert first.review_reason == ""
    assert "refunderes automatisk" in second.review_reason
    payment_intent, _ = await charge_of(sandbox, second_session)
    assert await refunded_on(sandbox, payment_intent) == second.total_ore


async def test_an_order_partly_added_by_another_adds_nothing_and_is_refunded(held):  # noqa: F811
    """Vault by one tab, Vault and Fusion by another; both paid. The second adds neither:
    a refund of its Vault share would have ended its Fusion too. Its money goes back."""
    client, sandbox = held
    _, email, plan = await company_with_plan()
    await login(client, email)
    base = {"kind": "plan_addition", "agreement": str(plan.id)}
    _, first_session = await place(client, **base, products="vault")
    second_id, second_session = await place(client, **base, products=["vault", "fusion"])
    for session_id in (first_session, second_session):
        await complete(sandbox, session_id, "paid")
        await deliver(client, sandbox, session_id, "checkout.session.completed")
    assert await plan_codes(plan.id) == ["inventor", "vault"]
    second = await Order.objects().get(Order.id == second_id)
    assert "vault var allerede lagt til" in second.review_reason
    assert "refunderes automatisk" in second.review_reason
    payment_intent, _ = await charge_of(sandbox, second_session)
    assert await refunded_on(sandbox, payment_intent) == second.total_ore


@pytest.mark.parametrize("meanwhile", ["refunded", "ended"])
async def test_a_plan_gone_before_payment_gets_nothing_added_and_the_money_back(
    held,  # noqa: F811
    meanwhile,
):
    client, sandbox = held
    company_id, email, plan = await company_with_plan()
    await login(client, email)
    order_id, session_id = await place(
        client, kind="plan_addition", agreement=str(plan.id), products=["vault"]
    )
    if meanwhile == "refunded":
        await Agreement.update({Agreement.cancelled_on: clock.today()}).where(
            Agreement.id == plan.id
        )
    else:
        yesterday = clock.today() - datetime.timedelta(days=1)
        await Agreement.update({Agreement.ends_on: yesterday}).where(Agreement.id == plan.id)
    await complete(sandbox, session_id, "paid")
    await deliver(client, sandbox, session_id, "checkout.session.completed")
    page = await client.get(f"/portal/orders/{order_id}?session_id={session_id}")
    assert "Betalt" in page.text and "Fri support gjelder" not in page.text

    assert await plan_codes(plan.id) == ["inventor"]
    order = await Order.objects().get(Order.id == order_id)
    assert "ingenting ble lagt til" in order.review_reason
    payment_intent, charge = await charge_of(sandbox, session_id)
    assert await refunded_on(sandbox, payment_intent) == order.total_ore
    # The refund's own event, when it comes, marks the order refunded.
    await deliver(client, sandbox, charge, "charge.refunded")
    assert (await Order.objects().get(Order.id == order_id)).status == "refunded"
    assert await coverage.expected_coverage(company_id, "vault", clock.today()) == "hourly"


async def test_a_refund_of_an_addition_ends_its_products_that_day(held):  # noqa: F811
    client, sandbox = held
    company_id, email, plan = await company_with_plan()
    await login(client, email)
    order_id, session_id = await place(
        client, kind="plan_addition", agreement=str(plan.id), products=["vault"]
    )
    await complete(sandbox, session_id, "paid")
    await deliver(client, sandbox, session_id, "checkout.session.completed")
    assert await coverage.expected_coverage(company_id, "vault", clock.today()) == "plan"

    payment_intent, charge = await charge_of(sandbox, session_id)
    await sandbox.v1.refunds.create_async(params={"payment_intent": payment_intent})
    await deliver(client, sandbox, charge, "charge.refunded")
    assert (await Order.objects().get(Order.id == order_id)).status == "refunded"
    today = clock.today()
    assert await coverage.expected_coverage(company_id, "vault", today) == "hourly"
    assert await coverage.expected_coverage(company_id, "inventor", today) == "plan"
    dashboard = await client.get("/portal")
    assert "Autodesk Vault" not in dashboard.text
    # Bought again, it is covered again (the same row, by the new order).
    _, again_session = await place(
        client, kind="plan_addition", agreement=str(plan.id), products=["vault"]
    )
    await complete(sandbox, again_session, "paid")
    await deliver(client, sandbox, again_session, "checkout.session.completed")
    assert await plan_codes(plan.id) == ["inventor", "vault"]
    assert await coverage.expected_coverage(company_id, "vault", today) == "plan"


async def test_the_addition_covers_the_current_period_only(held):  # noqa: F811
    client, sandbox = held
    company_id, email, plan = await company_with_plan()
    renewal = await agreements.create_plan(
        company_id=company_id,
        product_codes=["inventor"],
        starts_on=plan.ends_on + datetime.timedelta(days=1),
        ends_on=agreements.plan_period(plan.ends_on + datetime.timedelta(days=1))[1],
    )
    await login(client, email)
    page = await client.get("/portal/plan/products")
    assert f"Den neste perioden, fra {renewal.starts_on:%d.%m.%Y}" in page.text
    _, session_id = await place(
        client, kind="plan_addition", agreement=str(plan.id), products=["vault"]
    )
    await complete(sandbox, session_id, "paid")
    await deliver(client, sandbox, session_id, "checkout.session.completed")
    assert await plan_codes(plan.id) == ["inventor", "vault"]
    assert await plan_codes(renewal.id) == ["inventor"]
    assert await coverage.expected_coverage(company_id, "vault", plan.ends_on) == "plan"
    assert await coverage.expected_coverage(company_id, "vault", renewal.starts_on) == "hourly"


# --- forged forms and other people ----------------------------------------------------------


async def inactive_product() -> str:
    code = f"gammel-{secrets.token_hex(3)}"
    await Product(code=code, name="Gammel CAM", active=False, position=99).save()
    return code


@pytest.mark.parametrize(
    ("forgery", "message"),
    [
        ("covered", "Avtalen dekker allerede produktet."),
        ("inactive", "Ukjent produkt."),
        ("unknown", "Ukjent produkt."),
        ("none", "Velg minst ett produkt."),
        ("other company", "Avtalen finnes ikke eller gjelder ikke i dag."),
        ("no agreement", "Avtalen finnes ikke eller gjelder ikke i dag."),
        ("ended", "Avtalen finnes ikke eller gjelder ikke i dag."),
    ],
)
async def test_forged_plan_additions_are_refused_and_no_order_is_made(
    held,  # noqa: F811
    forgery,
    message,
):
    client, _ = held
    company_id, email, plan = await company_with_plan()
    await login(client, email)
    fields: dict[str, Any] = {"kind": "plan_addition", "agreement": str(plan.id)}
    products = {
        "covered": ["inventor"],
        "inactive": [await inactive_product()],
        "unknown": ["photoshop"],
        "none": [],
    }
    fields["products"] = products.get(forgery, ["vault"])
    if forgery == "other company":
        _, _, theirs = await company_with_plan()
        fields["agreement"] = str(theirs.id)
    elif forgery == "no agreement":
        del fields["agreement"]
    elif forgery == "ended":
        _, old_end = agreements.plan_period(clock.today() - datetime.timedelta(days=400))
        old = await agreements.create_plan(
            company_id=company_id,
            product_codes=["inventor"],
            starts_on=clock.today() - datetime.timedelta(days=400),
            ends_on=old_end,
        )
        fields["agreement"] = str(old.id)
    before = await Order.count()
    response = await post_form(client, "/portal/orders", fields)
    assert response.status_code == 422
    assert message in response.text and 'role="alert"' in response.text
    assert await Order.count() == before


async def a_member_of(company_id: int) -> str:
    email = new_email("medlem")
    await User(
        email=email,
        name="Mona Medlem",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    ).save()
    return email


async def test_a_member_sees_no_button_and_is_refused(held):  # noqa: F811
    client, _ = held
    company_id, _, plan = await company_with_plan()
    await add_lot(company_id, ["inventor"])
    await login(client, await a_member_of(company_id))
    dashboard = await client.get("/portal")
    assert "Omfatter:" in dashboard.text and "Legg til produkter" not in dashboard.text
    assert "Legg til produkter" not in (await client.get("/portal/account")).text
    for path in ("/portal/plan/products", "/portal/account/products"):
        assert (await client.get(path)).status_code == 403
    placed = await post_form(
        client,
        "/portal/orders",
        {"kind": "plan_addition", "agreement": str(plan.id), "products": "vault"},
    )
    assert placed.status_code == 403
    added = await post_form(client, "/portal/account/products", {"products": "vault"})
    assert added.status_code == 403
    assert not await Order.exists().where(Order.company == company_id)
    assert not await LotProduct.exists().where(
        LotProduct.lot.is_in(Lot.select(Lot.id).where(Lot.company == company_id))
        & (LotProduct.product_code == "vault")
    )


# --- the time account: free ---------------------------------------------------------------


async def add_lot(company_id: int, products: list[str], *, expires_in_days: int = 300) -> Lot:
    return await ledger.credit_lot(
        company_id=company_id,
        minutes=120,
        expires_on=clock.today() + datetime.timedelta(days=expires_in_days),
        product_codes=products,
        key=f"test-lot-{secrets.token_hex(6)}",
        cause=ledger.Cause(type="admin"),
    )


async def lot_codes(lot_id: int) -> list[str]:
    rows = await LotProduct.select(LotProduct.product_code).where(LotProduct.lot == lot_id)
    return sorted(row["product_code"] for row in rows)


async def test_adding_products_to_the_time_account_is_free_and_idempotent(client):
    await catalog.seed_demo_catalog()
    company_id, email = await make_company()
    first = await add_lot(company_id, ["inventor"])
    second = await add_lot(company_id, ["inventor", "vault"], expires_in_days=100)
    expired = await add_lot(company_id, ["inventor"], expires_in_days=0)
    await login(client, email)
    assert "Legg til produkter" in (await client.get("/portal")).text
    page = await client.get("/portal/account/products")
    assert 'value="fusion"' in page.text and 'value="inventor"' not in page.text
    assert await coverage.expected_coverage(company_id, "fusion", clock.today()) == "hourly"
    balance = await ledger.balance(company_id, clock.today())

    for _ in range(2):  # a double click
        response = await post_form(
            client, "/portal/account/products", {"products": ["fusion", "vault"]}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/portal/account"
    assert await lot_codes(first.id) == ["fusion", "inventor", "vault"]
    assert await lot_codes(second.id) == ["fusion", "inventor", "vault"]
    assert await lot_codes(expired.id) == ["inventor"]
    assert not await Order.exists().where(Order.company == company_id)
    assert await ledger.balance(company_id, clock.today()) == balance
    audited = await AuditEntry.objects().where(
        (AuditEntry.company == company_id) & (AuditEntry.kind == "products_added")
    )
    assert len(audited) == 1

    entry = await log_time(company_id, "fusion", "account")
    assert (entry.coverage, entry.account_minutes) == ("account", 30)
    assert (await client.get("/portal/account")).status_code == 200


@pytest.mark.parametrize(
    ("products", "message"),
    [
        (["photoshop"], "Ukjent produkt."),
        ("inactive", "Ukjent produkt."),
        ([], "Velg minst ett produkt."),
    ],
)
async def test_forged_time_account_additions_are_refused(client, products, message):
    await catalog.seed_demo_catalog()
    company_id, email = await make_company()
    lot = await add_lot(company_id, ["inventor"])
    await login(client, email)
    if products == "inactive":
        products = [await inactive_product()]
    response = await post_form(client, "/portal/account/products", {"products": products})
    assert response.status_code == 422 and message in response.text
    assert await lot_codes(lot.id) == ["inventor"]


async def test_without_minutes_left_there_is_nothing_to_add_to(client):
    await catalog.seed_demo_catalog()
    company_id, email = await make_company()
    await add_lot(company_id, ["inventor"], expires_in_days=0)
    await login(client, email)
    response = await post_form(client, "/portal/account/products", {"products": "vault"})
    assert response.status_code == 422
    assert "Tidskontoen har ingen timer igjen å legge produkter til." in response.text
