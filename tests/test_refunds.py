"""An admin refunds a paid order from its back-office view (issue 12), on SQLite and PostgreSQL.

The portal in process, against the payments sandbox (a real one, driven through the official
SDK) whose webhooks go nowhere: the test delivers the `charge.refunded` event itself, signed,
when it chooses — so it sees the order waiting for it, and can deliver it twice. The refund's
effect (minutes written off, plan ended, charges refunded) comes only through that webhook,
the same path as a refund made in Stripe's dashboard."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import stripe

from backend.services import catalog, clock, ledger
from backend.services.money import format_amount
from backend.services.users import create_staff
from backend.tables import (
    Agreement,
    AgreementProduct,
    AuditEntry,
    AuditKind,
    EntryKind,
    LedgerEntry,
    Lot,
    Order,
    RefundRequest,
    User,
)
from tests.conftest import HELD_PORTAL_URL, HELD_SECRET_KEY, HELD_WEBHOOK_SECRET
from tests.support import PASSWORD, login, make_company, make_order, new_email, post_form
from tests.test_checkout import complete
from tests.test_payment_trust import charge_statuses, events_for, hourly_charge
from tests.test_webhooks import sign

REASON = "Kunden angret kjøpet innen fristen"
# htmx asking for the order view's refund region.
REGION = {"hx-request": "true", "hx-target": "refund-status"}


@pytest.fixture
async def portal(silent_sandbox: str, tmp_path) -> AsyncIterator[tuple[Any, stripe.StripeClient]]:
    """The portal's app on a sandbox whose webhooks go nowhere, and that sandbox's API."""
    from backend.app import create_app
    from backend.config import load_settings

    await catalog.seed_demo_catalog()
    settings = load_settings(
        {
            **os.environ,
            "PORTAL_VAR_DIR": str(tmp_path),
            "STRIPE_SECRET_KEY": HELD_SECRET_KEY,
            "STRIPE_WEBHOOK_SECRET": HELD_WEBHOOK_SECRET,
            "STRIPE_API_BASE": silent_sandbox,
            "PORTAL_BASE_URL": HELD_PORTAL_URL,
        }
    )
    sandbox = stripe.StripeClient(
        HELD_SECRET_KEY, base_addresses={"api": silent_sandbox}, http_client=stripe.HTTPXClient()
    )
    yield create_app(settings, db_pool=False, background_jobs=False), sandbox


async def browser(app: Any) -> Any:
    from litestar.testing import AsyncTestClient

    return AsyncTestClient(app=app)


async def deliver(client: Any, event: stripe.Event) -> dict[str, Any]:
    payload = json.dumps(event.to_dict()).encode()
    response = await client.post(
        "/stripe/webhook",
        content=payload,
        headers={"stripe-signature": sign(payload, HELD_WEBHOOK_SECRET)},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def deliver_refunds(client: Any, sandbox: stripe.StripeClient, charge_id: str) -> list[Any]:
    """Every `charge.refunded` event of the charge so far, oldest first, delivered."""
    events = await events_for(sandbox, charge_id, "charge.refunded")
    return [await deliver(client, event) for event in reversed(events)]


async def paid_order(
    client: Any, sandbox: stripe.StripeClient, email: str, **fields: str
) -> tuple[Order, str]:
    """The customer `email` buys (a top-up, a plan, the charges) and pays; the payment's
    webhook is delivered. Returns the paid order and the charge that paid it."""
    await login(client, email)
    response = await post_form(client, "/portal/orders", fields)
    assert response.status_code == 303, response.text
    session_id = response.headers["location"].rsplit("/", 1)[1]
    await complete(sandbox, session_id, "paid")
    (event,) = await events_for(sandbox, session_id, "checkout.session.completed")
    await deliver(client, event)
    order = await Order.objects().get(Order.stripe_session_id == session_id)
    assert order.status == "paid"
    intent = await sandbox.v1.payment_intents.retrieve_async(order.stripe_payment_intent_id)
    return order, intent.latest_charge


async def signed_in_staff(client: Any, role: str = "admin") -> User:
    user = await create_staff(
        email=new_email(role), name=f"Ansatt {role}", role=role, password=PASSWORD
    )
    assert (await login(client, user.email)).status_code == 303
    return user


async def propose(client: Any, order_id: int, amount: str, reason: str = REASON) -> Any:
    return await post_form(
        client, f"/staff/orders/{order_id}/refund", {"amount": amount, "reason": reason}
    )


def confirmation_form(page: str) -> dict[str, str]:
    """The hidden fields of a confirmation page's form."""
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    fields.pop("_csrf_token", None)
    return {key: value.replace("&#39;", "'").replace("&amp;", "&") for key, value in fields.items()}


async def refund(client: Any, order_id: int, amount: str) -> tuple[str, dict[str, str]]:
    """Ask, then confirm: (the confirmation page's text, the form it confirmed with)."""
    page = await propose(client, order_id, amount)
    assert page.status_code == 200, page.text
    form = confirmation_form(page.text)
    confirmed = await post_form(client, f"/staff/orders/{order_id}/refund/confirm", form)
    assert confirmed.status_code == 303, confirmed.text
    return page.text, form


async def refunded_on(sandbox: stripe.StripeClient, charge_id: str) -> int:
    return (await sandbox.v1.charges.retrieve_async(charge_id)).amount_refunded


async def write_offs(lot: Lot) -> list[int]:
    rows = await LedgerEntry.objects().where(
        (LedgerEntry.lot == lot.id) & (LedgerEntry.kind == EntryKind.refund_write_off.value)
    )
    return [row.minutes for row in rows]


async def refund_audit(company_id: int) -> list[AuditEntry]:
    return await AuditEntry.objects().where(
        (AuditEntry.company == company_id) & (AuditEntry.kind == AuditKind.refund.value)
    )


async def test_a_full_refund_of_a_top_up_writes_off_its_unused_minutes_once(portal):
    app, sandbox = portal
    company_id, email = await make_company()
    # One browser for all (the app's gateway client lives in its event loop): it signs in
    # as whoever acts next.
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="topup", hours="5", products="inventor"
        )
        admin = await signed_in_staff(staff)
        view = await staff.get(f"/staff/orders/{order.id}")
        assert view.status_code == 200
        assert "5 t 0 min ubrukt" in view.text and format_amount(order.total_ore) in view.text

        page, _ = await refund(staff, order.id, format_amount(order.total_ore))
        assert "300 minutter skrives av tidskontoen" in page
        assert await refunded_on(sandbox, charge) == order.total_ore
        # Nothing moved yet: the effect waits for the webhook.
        lot = await Lot.objects().get(Lot.order == order.id)
        assert lot.remaining_minutes == 300
        waiting = await staff.get(f"/staff/orders/{order.id}")
        assert "Refusjon sendt, venter på bekreftelse" in waiting.text
        # The region asks again, on its own, until the webhook has come.
        region = await staff.get(f"/staff/orders/{order.id}", headers=REGION)
        assert 'id="refund-status"' in region.text and 'hx-trigger="every 2s"' in region.text
        assert "<html" not in region.text

        [result] = await deliver_refunds(customer, sandbox, charge)
        assert result["result"] == "handled"
        again = await deliver_refunds(customer, sandbox, charge)
        assert [r["result"] for r in again] == ["duplicate"]

        lot = await Lot.objects().get(Lot.id == lot.id)
        assert lot.remaining_minutes == 0 and await write_offs(lot) == [-300]
        assert await ledger.balance(company_id, clock.today()) == 0
        after = await Order.objects().get(Order.id == order.id)
        assert (after.status, after.refunded_ore) == ("refunded", order.total_ore)
        done = await staff.get(f"/staff/orders/{order.id}")
        assert "venter på bekreftelse" not in done.text and "Refundert" in done.text
        region = await staff.get(f"/staff/orders/{order.id}", headers=REGION)
        assert "Bekreftet" in region.text and "hx-trigger" not in region.text
        # The customer sees it on their statement.
        await login(customer, email)
        assert "Refundert, avskrevet" in (await customer.get("/portal/usage")).text

    [entry] = await refund_audit(company_id)
    assert (entry.actor, entry.reason, entry.subject) == (admin.id, REASON, f"order:{order.id}")
    assert json.loads(entry.before)["refunded_ore"] == 0
    after_audit = json.loads(entry.after)
    assert after_audit["amount_ore"] == order.total_ore
    assert after_audit["write_off_minutes"] == 300


async def test_a_partial_refund_writes_off_the_refunded_share(portal):
    app, sandbox = portal
    _, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="topup", hours="4", products="inventor"
        )
        await signed_in_staff(staff)
        quarter = order.total_ore // 4
        page, _ = await refund(staff, order.id, format_amount(quarter))
        assert "60 minutter skrives av tidskontoen" in page
        await deliver_refunds(customer, sandbox, charge)

        lot = await Lot.objects().get(Lot.order == order.id)
        assert (lot.remaining_minutes, await write_offs(lot)) == (180, [-60])
        after = await Order.objects().get(Order.id == order.id)
        assert (after.status, after.refunded_ore) == ("paid", quarter)
        # What is left can be refunded still, and no more.
        view = await staff.get(f"/staff/orders/{order.id}")
        assert format_amount(order.total_ore - quarter) in view.text


async def test_a_refund_larger_than_what_is_unused_writes_off_to_zero_and_no_further(portal):
    app, sandbox = portal
    company_id, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="topup", hours="2", products="inventor"
        )
        used = await ledger.debit(
            company_id=company_id,
            minutes=90,
            on_date=clock.today(),
            key=f"used-{order.id}",
            cause=ledger.Cause(type="time_entry"),
        )
        assert used.debited_minutes == 90
        await signed_in_staff(staff)
        page, _ = await refund(staff, order.id, format_amount(order.total_ore))
        assert "30 minutter skrives av tidskontoen (puljen har 30 minutter ubrukt)" in page
        await deliver_refunds(customer, sandbox, charge)

    lot = await Lot.objects().get(Lot.order == order.id)
    assert (lot.remaining_minutes, await write_offs(lot)) == (0, [-30])
    assert await ledger.entries_sum_by_lot(company_id) == {lot.id: 0}
    assert await ledger.balance(company_id, clock.today()) == 0


async def test_a_refund_of_a_plan_ends_the_plan(portal):
    app, sandbox = portal
    _, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(customer, sandbox, email, kind="plan", products="inventor")
        plan = await Agreement.objects().get(Agreement.order == order.id)
        # Vault added to it later, by an order of its own: it ends with the plan.
        addition = await make_order(plan.company, kind="plan_addition", amount=100_000)
        await AgreementProduct(
            agreement=plan.id, product_code="vault", order=addition.id, covered_from=clock.today()
        ).save()
        await signed_in_staff(staff)
        page, _ = await refund(staff, order.id, "100,00")
        assert "avsluttes: den dekker ingenting fra og med " + f"{clock.today():%d.%m.%Y}" in page
        assert "lagt til avtalen senere (Autodesk Vault) dekkes heller ikke lenger" in page
        assert (await Agreement.objects().get(Agreement.id == plan.id)).cancelled_on is None
        await deliver_refunds(customer, sandbox, charge)

    plan = await Agreement.objects().get(Agreement.id == plan.id)
    assert plan.cancelled_on == clock.today()
    assert (await Order.objects().get(Order.id == order.id)).refunded_ore == 10_000


async def test_a_refund_of_a_charges_order_marks_the_charges_it_pays_back_refunded(portal):
    app, sandbox = portal
    company_id, email = await make_company()
    first = await hourly_charge(company_id, 20, "first")
    await hourly_charge(company_id, 35, "second")
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(customer, sandbox, email, kind="charges")
        await signed_in_staff(staff)
        first_total = first.amount_ore + (first.amount_ore * 25 + 50) // 100
        page, _ = await refund(staff, order.id, format_amount(first_total))
        assert "Disse timeføringene blir refundert" in page and f"#{first.id}:" in page
        assert await charge_statuses(company_id) == ["paid", "paid"]
        await deliver_refunds(customer, sandbox, charge)
        assert await charge_statuses(company_id) == ["refunded", "paid"]

        # The rest: every charge of the order.
        await refund(staff, order.id, format_amount(order.total_ore - first_total))
        await deliver_refunds(customer, sandbox, charge)
    assert await charge_statuses(company_id) == ["refunded", "refunded"]
    assert (await Order.objects().get(Order.id == order.id)).status == "refunded"


async def test_a_double_click_on_confirm_refunds_once(portal):
    app, sandbox = portal
    company_id, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="topup", hours="2", products="inventor"
        )
        await signed_in_staff(staff)
        half = order.total_ore // 2
        page = await propose(staff, order.id, format_amount(half))
        form = confirmation_form(page.text)
        url = f"/staff/orders/{order.id}/refund/confirm"
        clicks = await asyncio.gather(*(post_form(staff, url, form) for _ in range(2)))
        again = await post_form(staff, url, form)  # and once more, after the page came back
        assert [r.status_code for r in [*clicks, again]] == [303, 303, 303]

        assert await refunded_on(sandbox, charge) == half
        assert len(await events_for(sandbox, charge, "charge.refunded")) == 1
        assert await RefundRequest.count().where(RefundRequest.order == order.id) == 1
        await deliver_refunds(customer, sandbox, charge)
        await deliver_refunds(customer, sandbox, charge)

    lot = await Lot.objects().get(Lot.order == order.id)
    assert await write_offs(lot) == [-60]
    assert len(await refund_audit(company_id)) == 1


async def test_an_amount_above_what_is_left_is_refused_in_norwegian_and_nothing_is_sent(portal):
    app, sandbox = portal
    company_id, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="topup", hours="1", products="inventor"
        )
        await signed_in_staff(staff)
        too_much = await propose(staff, order.id, format_amount(order.total_ore + 1))
        assert too_much.status_code == 422
        assert "Beløpet er høyere enn det som gjenstår å refundere" in too_much.text
        assert REASON in too_much.text  # what was typed is kept
        for amount, message in (
            ("tusen", "Skriv beløpet i kroner inkl. MVA"),
            ("0", "Beløpet må være større enn null"),
            ("-5", "Skriv beløpet i kroner inkl. MVA"),
        ):
            response = await propose(staff, order.id, amount)
            assert response.status_code == 422 and message in response.text
        no_reason = await propose(staff, order.id, "10", reason=" ")
        assert no_reason.status_code == 422 and "Skriv en begrunnelse" in no_reason.text

        # A confirmation whose amount was changed on the way is checked again.
        page = await propose(staff, order.id, "10,00")
        form = {**confirmation_form(page.text), "amount": format_amount(order.total_ore + 100)}
        tampered = await post_form(staff, f"/staff/orders/{order.id}/refund/confirm", form)
        assert tampered.status_code == 422
        assert "Beløpet er høyere enn det som gjenstår å refundere" in tampered.text

        # While a refund waits for its webhook, it counts against what is left.
        await refund(staff, order.id, format_amount(order.total_ore - 100))
        rest = await propose(staff, order.id, "1,01")
        assert rest.status_code == 422

    assert await refunded_on(sandbox, charge) == order.total_ore - 100
    assert await RefundRequest.count().where(RefundRequest.order == order.id) == 1
    assert len(await refund_audit(company_id)) == 1


async def test_a_refusal_by_the_gateway_is_shown_and_the_request_marked_failed(portal):
    """A refund made in Stripe's dashboard whose webhook has not come yet: the portal thinks
    more is left than Stripe has. Stripe refuses; the admin is told, nothing moves; the
    dashboard refund's webhook then applies as any refund does."""
    app, sandbox = portal
    _, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="topup", hours="2", products="inventor"
        )
        await sandbox.v1.refunds.create_async(
            params={"payment_intent": order.stripe_payment_intent_id, "amount": order.total_ore}
        )
        await signed_in_staff(staff)
        page = await propose(staff, order.id, format_amount(order.total_ore))
        form = confirmation_form(page.text)
        failed = await post_form(staff, f"/staff/orders/{order.id}/refund/confirm", form)
        assert failed.status_code == 422
        assert "Betalingstjenesten gjennomførte ikke refusjonen" in failed.text
        [request] = await RefundRequest.objects().where(RefundRequest.order == order.id)
        assert request.status == "failed" and request.error
        view = await staff.get(f"/staff/orders/{order.id}")
        assert "Feilet" in view.text and "venter på bekreftelse" not in view.text

        await deliver_refunds(customer, sandbox, charge)
    lot = await Lot.objects().get(Lot.order == order.id)
    assert await write_offs(lot) == [-120]
    assert await refunded_on(sandbox, charge) == order.total_ore


async def test_an_unpaid_order_cannot_be_refunded(portal):
    app, _ = portal
    _, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        await login(customer, email)
        response = await post_form(
            customer, "/portal/orders", {"kind": "topup", "hours": "1", "products": "inventor"}
        )
        session_id = response.headers["location"].rsplit("/", 1)[1]
        order = await Order.objects().get(Order.stripe_session_id == session_id)
        await signed_in_staff(staff)
        view = await staff.get(f"/staff/orders/{order.id}")
        assert "Bestillingen kan ikke refunderes" in view.text
        refused = await propose(staff, order.id, "10")
        assert refused.status_code == 422
        assert "Bare en betalt bestilling kan refunderes" in refused.text
        assert (await staff.get("/staff/orders/999999")).status_code == 404


@pytest.mark.parametrize("role", ["technician", "superuser"])
async def test_technicians_and_customers_are_refused(portal, role):
    app, sandbox = portal
    company_id, email = await make_company()
    async with await browser(app) as customer:
        other = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="topup", hours="1", products="inventor"
        )
        if role == "technician":
            await signed_in_staff(other, "technician")
        else:
            await login(other, email)
        assert (await other.get(f"/staff/orders/{order.id}")).status_code == 403
        assert (await propose(other, order.id, "10")).status_code == 403
        form = {"amount": "10", "reason": REASON, "confirmation": "x" * 32}
        confirm = await post_form(other, f"/staff/orders/{order.id}/refund/confirm", form)
        assert confirm.status_code == 403
    assert await refunded_on(sandbox, charge) == 0
    assert await RefundRequest.count().where(RefundRequest.order == order.id) == 0
    assert await refund_audit(company_id) == []


async def test_the_company_page_links_its_orders_and_the_pages_speak_english(portal):
    app, sandbox = portal
    company_id, email = await make_company()
    async with await browser(app) as customer:
        staff = customer
        order, _ = await paid_order(
            customer, sandbox, email, kind="topup", hours="1", products="inventor"
        )
        await signed_in_staff(staff)
        page = await staff.get(f"/staff/companies/{company_id}")
        assert f'href="/staff/orders/{order.id}"' in page.text

        await staff.get("/language/en")
        view = await staff.get(f"/staff/orders/{order.id}")
        assert "Left to refund" in view.text and "See what the refund does" in view.text
        confirm = await propose(staff, order.id, format_amount(order.total_ore))
        assert "60 minutes are written off the time account" in confirm.text
        too_much = await propose(staff, order.id, format_amount(order.total_ore + 1))
        assert "The amount is more than what is left to refund." in too_much.text


async def test_as_under_make_run_the_sandbox_delivers_the_refund_by_itself(
    person, live_server, sandbox_key
):
    """The portal served with its own sandbox, which sends its webhooks itself: the refund's
    effect arrives without the test's help, once."""
    import httpx

    from tests.test_checkout import checkout, eventually, status_is

    placed, session_id = await checkout(person, kind="topup", hours="2", products=["inventor"])
    sandbox = stripe.StripeClient(
        sandbox_key,
        base_addresses={"api": f"{live_server}/sandbox/stripe"},
        http_client=stripe.HTTPXClient(),
    )
    await complete(sandbox, session_id, "paid")
    await eventually(lambda: status_is(placed.id, "paid"))
    async with httpx.AsyncClient(base_url=live_server, timeout=20) as staff:
        await signed_in_staff(staff)
        await refund(staff, placed.id, format_amount(placed.total_ore))
    await eventually(lambda: status_is(placed.id, "refunded"))
    lot = await Lot.objects().get(Lot.order == placed.id)
    assert (lot.remaining_minutes, await write_offs(lot)) == (0, [-120])


async def test_a_refund_of_products_added_to_a_plan_ends_their_coverage(portal):
    from backend.services import coverage
    from tests.test_product_additions import company_with_plan

    app, sandbox = portal
    company_id, email, plan = await company_with_plan()
    async with await browser(app) as customer:
        staff = customer
        order, charge = await paid_order(
            customer, sandbox, email, kind="plan_addition", agreement=str(plan.id), products="vault"
        )
        assert await coverage.expected_coverage(company_id, "vault", clock.today()) == "plan"
        await signed_in_staff(staff)
        page, _ = await refund(staff, order.id, "50,00")
        assert "Autodesk Vault" in page
        assert f"dekkes ikke lenger fra og med {clock.today():%d.%m.%Y}" in page
        await deliver_refunds(customer, sandbox, charge)
    assert await coverage.expected_coverage(company_id, "vault", clock.today()) == "hourly"
    assert await coverage.expected_coverage(company_id, "inventor", clock.today()) == "plan"


async def test_a_refund_the_gateway_never_answered_is_sent_again_as_the_same_refund(
    portal, monkeypatch
):
    """No answer from the gateway: the refund may have been made. The request keeps its amount
    (no new confirmation can refund it again) and is sent again with its own idempotency key,
    so Stripe answers with the refund it made: one refund, one write-off."""
    from backend.services.payments import Payments
    from tests.conftest import _free_port

    app, sandbox = portal
    _, email = await make_company()
    async with await browser(app) as client:
        order, charge = await paid_order(
            client, sandbox, email, kind="topup", hours="2", products="inventor"
        )
        await signed_in_staff(client)
        page = await propose(client, order.id, format_amount(order.total_ore))
        form = confirmation_form(page.text)
        reachable = app.state.payments
        app.state.payments = Payments(
            secret_key=HELD_SECRET_KEY,
            webhook_secret=HELD_WEBHOOK_SECRET,
            api_base=f"http://127.0.0.1:{_free_port()}",  # nobody listens
        )
        lost = await post_form(client, f"/staff/orders/{order.id}/refund/confirm", form)
        assert lost.status_code == 422
        assert "Betalingstjenesten svarte ikke" in lost.text
        [request] = await RefundRequest.objects().where(RefundRequest.order == order.id)
        assert request.status == "pending" and request.error
        assert (await propose(client, order.id, "1,00")).status_code == 422  # nothing left

        # A day later Stripe may have forgotten the key: a resend could refund twice.
        resend = f"/staff/orders/{order.id}/refunds/{request.id}/resend"
        real_now = clock.now
        monkeypatch.setattr(clock, "now", lambda: real_now() + datetime.timedelta(hours=24))
        late = await post_form(client, resend, {})
        assert late.status_code == 422 and "mer enn 23 timer siden" in late.text
        assert "Send igjen" not in (await client.get(f"/staff/orders/{order.id}")).text
        monkeypatch.setattr(clock, "now", real_now)

        # Stripe had made it; only its answer was lost on the way back.
        await sandbox.v1.refunds.create_async(
            params={"payment_intent": order.stripe_payment_intent_id, "amount": order.total_ore},
            options={"idempotency_key": f"admin-refund-{form['confirmation']}"},
        )
        app.state.payments = reachable
        view = await client.get(f"/staff/orders/{order.id}")
        assert "Send igjen" in view.text
        assert (await post_form(client, resend, {})).status_code == 303
        sent = await RefundRequest.objects().get(RefundRequest.id == request.id)
        assert sent.status == "sent" and sent.stripe_refund_id and not sent.error
        assert len(await events_for(sandbox, charge, "charge.refunded")) == 1  # one refund
        assert await refunded_on(sandbox, charge) == order.total_ore
        assert (await post_form(client, resend, {})).status_code == 422  # once sent, done

        await deliver_refunds(client, sandbox, charge)
    lot = await Lot.objects().get(Lot.order == order.id)
    assert await write_offs(lot) == [-120]
