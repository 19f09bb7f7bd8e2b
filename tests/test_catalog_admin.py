"""The back office's catalog (issue 12): an admin adds price versions with a valid-from date,
manages products and edits the business's settings — each change one audit entry with its
reason. A price change never changes a past amount (orders, time entries, hourly charges); a
future price waits for its day; an inactive product is not sold but stays covered. On SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
import json
import secrets

import pytest

from backend.services import (
    business,
    catalog,
    clock,
    coverage,
    ledger,
    orders,
    password_reset,
    pricing,
)
from backend.services.availability import availability_at
from backend.services.money import format_nok
from backend.services.users import create_staff
from backend.tables import (
    AuditEntry,
    AuditKind,
    BusinessSettings,
    Company,
    HourlyCharge,
    Order,
    OutboxMail,
    PriceList,
    Product,
    TimeEntry,
    User,
)
from tests.support import (
    PASSWORD,
    login,
    make_company,
    make_ticket,
    new_email,
    post_form,
    register,
)

REASON = "Ny prisliste fra leverandøren"
PRICES_URL = "/staff/admin/catalog/prices"
SETTINGS_URL = "/staff/admin/catalog/settings"


@pytest.fixture(autouse=True)
async def _catalog_as_it_was():
    """The tests share one database: what a test adds to the price list, the products or the
    settings goes again afterwards, so other tests read the demo's catalog."""
    await catalog.seed_demo_catalog()
    last = await PriceList.select(PriceList.id).order_by(PriceList.id, ascending=False).first()
    last_product = await Product.select(Product.id).order_by(Product.id, ascending=False).first()
    yield
    await PriceList.delete().where(PriceList.id > last["id"])
    await Product.delete().where(Product.id > last_product["id"])
    await BusinessSettings.delete(force=True)


async def _staff(role: str) -> User:
    return await create_staff(
        email=new_email(role), name=f"Ansatt {role}", role=role, password=PASSWORD
    )


async def _admin_signed_in(client) -> User:
    admin = await _staff("admin")
    assert (await login(client, admin.email)).status_code == 303
    return admin


def _kroner(ore: int) -> str:
    return catalog.format_kroner(ore)


def _price_form(prices: catalog.Prices, day: datetime.date, /, **changes: str) -> dict:
    form = {
        "valid_from": day.isoformat(),
        "plan_price_per_product": _kroner(prices.plan_price_per_product_ore),
        "prepaid_hour_price": _kroner(prices.prepaid_hour_price_ore),
        "hourly_rate": _kroner(prices.hourly_rate_ore),
        "topup_packs": prices.topup_packs,
        "reason": REASON,
    }
    return {**form, **changes}


async def _audit(kind: AuditKind, since: int) -> list[AuditEntry]:
    return await AuditEntry.objects().where((AuditEntry.kind == kind) & (AuditEntry.id > since))


async def _last_audit_id() -> int:
    last = await AuditEntry.select(AuditEntry.id).order_by(AuditEntry.id, ascending=False).first()
    return last["id"] if last else 0


async def _product(active: bool = True) -> Product:
    code = f"cam-{secrets.token_hex(3)}"
    product = Product(code=code, name=f"CAM {code}", position=90, active=active)
    await product.save()
    return product


def _move_clock(monkeypatch, days: int) -> None:
    moved = clock.now() + datetime.timedelta(days=days)
    monkeypatch.setattr(clock, "now", lambda: moved)


async def _log_time(client, ticket_id: int, minutes: int) -> None:
    response = await post_form(
        client,
        f"/staff/tickets/{ticket_id}/time",
        {"minutes": str(minutes), "performed_on": "", "channel": "phone", "note": ""},
    )
    assert response.status_code == 303, response.text


# --- versioned prices ------------------------------------------------------------------------


async def test_a_new_price_never_changes_past_orders_or_charges(client, other_client, monkeypatch):
    """Orders placed and time logged before a price change keep their amounts; after it, the
    new prices apply — to the next order and the next time entry."""
    old = await catalog.prices_on(clock.today())
    company_id, superuser_email = await make_company()
    superuser = await User.objects().get(User.email == superuser_email)
    ticket = await make_ticket(company_id, product="inventor")  # no agreement: hourly
    admin = await _admin_signed_in(client)

    placed = await orders.place_order(
        superuser, {"kind": "plan", "products": ["inventor", "vault"], "hours": ""}
    )
    assert placed.amount_ore == 2 * old.plan_price_per_product_ore
    await _log_time(client, ticket.id, 30)
    [before] = await TimeEntry.objects().where(TimeEntry.ticket == ticket.id)
    assert before.hourly_amount_ore == coverage.hourly_amount_ore(30, old.hourly_rate_ore)

    new_hourly, new_plan = old.hourly_rate_ore + 65_000, old.plan_price_per_product_ore + 50_000
    form = _price_form(
        old,
        clock.today(),
        hourly_rate=_kroner(new_hourly),
        plan_price_per_product=_kroner(new_plan),
    )
    since, count = await _last_audit_id(), await PriceList.count()
    assert (await post_form(client, PRICES_URL, form)).status_code == 303
    # Sent twice (a double click): one version, one audit entry (checked below).
    assert (await post_form(client, PRICES_URL, form)).status_code == 303
    assert await PriceList.count() == count + 1

    # The past is as it was.
    assert (await Order.objects().get(Order.id == placed.id)).amount_ore == placed.amount_ore
    entry = await TimeEntry.objects().get(TimeEntry.id == before.id)
    assert entry.hourly_amount_ore == before.hourly_amount_ore
    charge = await HourlyCharge.objects().get(HourlyCharge.time_entry == before.id)
    assert charge.amount_ore == before.hourly_amount_ore
    # The customer's order page still says the old amount.
    await login(other_client, superuser_email)
    order_page = await other_client.get(f"/portal/orders/{placed.id}")
    assert format_nok(placed.total_ore) in order_page.text

    # What comes after is priced anew.
    again = await orders.place_order(
        superuser, {"kind": "plan", "products": ["inventor", "vault"], "hours": ""}
    )
    assert again.amount_ore == 2 * new_plan
    await _log_time(client, ticket.id, 30)
    after = await TimeEntry.objects().where(
        (TimeEntry.ticket == ticket.id) & (TimeEntry.id != before.id)
    )
    assert [e.hourly_amount_ore for e in after] == [coverage.hourly_amount_ore(30, new_hourly)]

    [entry] = await _audit(AuditKind.price_changed, since)
    assert entry.actor == admin.id and entry.reason == REASON
    assert json.loads(entry.before)["hourly_rate_ore"] == old.hourly_rate_ore
    assert json.loads(entry.after)["hourly_rate_ore"] == new_hourly


async def test_a_future_price_waits_for_its_day(client, other_client, monkeypatch):
    old = await catalog.prices_on(clock.today())
    company_id, _ = await make_company()
    ticket = await make_ticket(company_id, product="inventor")
    await _admin_signed_in(client)
    tomorrow = clock.today() + datetime.timedelta(days=1)
    new_hourly, new_hour = old.hourly_rate_ore + 10_000, old.prepaid_hour_price_ore + 20_000
    form = _price_form(
        old, tomorrow, hourly_rate=_kroner(new_hourly), prepaid_hour_price=_kroner(new_hour)
    )
    assert (await post_form(client, PRICES_URL, form)).status_code == 303

    # Today: the old prices everywhere; the history says the new ones are coming.
    assert (await pricing.quote(company_id, "topup", 3, ["inventor"])).amount_ore == (
        3 * old.prepaid_hour_price_ore
    )
    history = (await client.get(PRICES_URL)).text
    assert "Kommer" in history and f"{tomorrow:%d.%m.%Y}" in history
    home = await other_client.get("/")
    assert format_nok(old.hourly_rate_ore) in home.text
    assert f"Nye priser fra {tomorrow:%d.%m.%Y}" in home.text
    await _log_time(client, ticket.id, 60)
    [today_entry] = await TimeEntry.objects().where(TimeEntry.ticket == ticket.id)
    assert today_entry.hourly_amount_ore == old.hourly_rate_ore

    # Tomorrow: the new ones, for what is bought and logged then.
    _move_clock(monkeypatch, 1)
    await login(client, (await User.objects().get(User.id == today_entry.technician)).email)
    assert (await pricing.quote(company_id, "topup", 3, ["inventor"])).amount_ore == 3 * new_hour
    await _log_time(client, ticket.id, 60)
    entries = await TimeEntry.objects().where(TimeEntry.ticket == ticket.id).order_by(TimeEntry.id)
    assert [e.hourly_amount_ore for e in entries] == [old.hourly_rate_ore, new_hourly]
    home = await other_client.get("/")
    assert format_nok(new_hourly) in home.text and "Nye priser fra" not in home.text


async def test_the_prices_of_a_day_are_the_latest_version_from_on_or_before_it():
    def version(id_: int, day: datetime.date, rate: int) -> catalog.Prices:
        return catalog.Prices(id_, 1, 1, rate, "5", valid_from=day)

    jan, feb = datetime.date(2027, 1, 1), datetime.date(2027, 2, 1)
    versions = [version(1, jan, 100), version(3, feb, 300), version(2, feb, 200)]
    assert catalog.in_force(versions, datetime.date(2026, 12, 31)) is None
    assert catalog.in_force(versions, jan).hourly_rate_ore == 100
    assert catalog.in_force(versions, datetime.date(2027, 1, 31)).hourly_rate_ore == 100
    # Two versions from one day: the one added last.
    assert catalog.in_force(versions, feb).hourly_rate_ore == 300


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"hourly_rate": "-100"}, "hourly_rate", "Prisen må være større enn 0 kr."),
        ({"hourly_rate": "mye"}, "hourly_rate", "Skriv prisen i kroner"),
        ({"plan_price_per_product": "0"}, "plan_price_per_product", "større enn 0 kr"),
        ({"topup_packs": "5, 300"}, "topup_packs", "Skriv pakkene som hele timer"),
        ({"valid_from": "i morgen"}, "valid_from", "Skriv datoen som åååå-mm-dd."),
        ({"reason": " "}, "reason", "Skriv en begrunnelse."),
    ],
)
async def test_a_price_that_does_not_read_is_refused_and_changes_nothing(
    client, changes, field, message
):
    old = await catalog.prices_on(clock.today())
    await _admin_signed_in(client)
    count, since = await PriceList.count(), await _last_audit_id()
    form = _price_form(old, clock.today(), **changes)
    response = await post_form(client, PRICES_URL, form)
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    # What was typed is kept.
    assert f'value="{form[field]}"' in response.text or field == "reason"
    assert await PriceList.count() == count
    assert await _audit(AuditKind.price_changed, since) == []


async def test_a_price_cannot_start_in_the_past_and_every_message_comes_at_once(client):
    old = await catalog.prices_on(clock.today())
    await _admin_signed_in(client)
    count = await PriceList.count()
    yesterday = clock.today() - datetime.timedelta(days=1)
    form = _price_form(old, yesterday, hourly_rate="-5")
    response = await post_form(client, PRICES_URL, form)
    assert response.status_code == 422
    assert "ikke tilbake i tid" in response.text
    assert "Prisen må være større enn 0 kr." in response.text
    assert await PriceList.count() == count
    assert (await catalog.prices_on(clock.today())).hourly_rate_ore == old.hourly_rate_ore


async def test_kroner_are_read_as_people_type_them():
    assert catalog.kroner_to_ore("1350") == 135_000
    assert catalog.kroner_to_ore("1 350") == 135_000
    assert catalog.kroner_to_ore("1\u00a0350,50 kr") == 135_050
    assert catalog.kroner_to_ore("1350.5") == 135_050
    for bad in ("", "1,234,5", "12e3", "١٢", "- 5", "1 35"):
        with pytest.raises(catalog.FieldError):
            catalog.kroner_to_ore(bad)


# --- products --------------------------------------------------------------------------------


async def test_an_inactive_product_is_not_sold_but_stays_covered(client, other_client):
    product = await _product()
    company_id, superuser_email = await make_company()
    await ledger.credit_lot(
        company_id=company_id,
        minutes=120,
        expires_on=clock.today() + datetime.timedelta(days=100),
        product_codes=[product.code],
        key=f"lot-{product.code}",
        cause=ledger.Cause(type="order"),
    )
    ticket = await make_ticket(company_id, product=product.code)
    admin = await _admin_signed_in(client)
    since = await _last_audit_id()
    change = {"name": "CAM gammel", "position": "7", "active": "0", "reason": "Utgår"}
    assert (
        await post_form(client, f"/staff/admin/catalog/products/{product.id}", change)
    ).status_code == 303
    [entry] = await _audit(AuditKind.product_changed, since)
    assert entry.actor == admin.id and entry.reason == "Utgår"
    assert json.loads(entry.before)["active"] is True
    assert json.loads(entry.after) == {
        "active": False,
        "code": product.code,
        "name": "CAM gammel",
        "position": 7,
    }

    # Not offered: not on the order forms, no price, and a forged order is refused.
    await login(other_client, superuser_email)
    topup = await other_client.get("/portal/topup")
    assert f'value="{product.code}"' not in topup.text
    preview = await other_client.get(f"/portal/price?kind=plan&products={product.code}")
    assert "Ukjent produkt." in preview.text
    count = await Order.count()
    response = await post_form(
        other_client, "/portal/orders", {"kind": "plan", "products": product.code}
    )
    assert response.status_code == 422 and "Ukjent produkt." in response.text
    assert await Order.count() == count

    # Still on the lot that names it, and still covered by it: the superuser can open a
    # ticket on it (a company it does not cover is not offered it).
    account = await other_client.get("/portal/account")
    assert "CAM gammel" in account.text
    new_ticket = await other_client.get("/portal/tickets/new")
    assert f'value="{product.code}"' in new_ticket.text
    opened = await post_form(
        other_client,
        "/portal/tickets",
        {"product": product.code, "subject": "Postprosessor", "description": "Feil i NC-koden"},
    )
    assert opened.status_code == 303, opened.text
    _, other_email = await make_company()
    await login(other_client, other_email)
    assert f'value="{product.code}"' not in (await other_client.get("/portal/tickets/new")).text
    assert await coverage.expected_coverage(company_id, product.code, clock.today()) == "account"
    await _log_time(client, ticket.id, 20)
    [entry] = await TimeEntry.objects().where(TimeEntry.ticket == ticket.id)
    assert (entry.coverage, entry.account_minutes, entry.hourly_amount_ore) == ("account", 30, 0)
    assert await ledger.balance(company_id, clock.today()) == 90


async def test_an_admin_adds_renames_reorders_and_reactivates_a_product(client, other_client):
    await _admin_signed_in(client)
    code = f"nx-{secrets.token_hex(3)}"
    since = await _last_audit_id()
    added = await post_form(
        client,
        "/staff/admin/catalog/products",
        {"code": code.upper(), "name": "Siemens NX", "position": "3", "reason": "Ny avtale"},
    )
    assert added.status_code == 303
    product = await Product.objects().get(Product.code == code)
    assert (product.name, product.position, product.active) == ("Siemens NX", 3, True)
    assert code in [p.code for p in (await catalog.current_offer()).products]
    # The same code again is refused, with a message.
    twice = await post_form(
        client,
        "/staff/admin/catalog/products",
        {"code": code, "name": "NX igjen", "position": "", "reason": "Ny avtale"},
    )
    assert twice.status_code == 422 and "Det finnes allerede et produkt med denne koden." in (
        twice.text
    )
    url = f"/staff/admin/catalog/products/{product.id}"
    off = {"name": "NX", "position": "4", "active": "0", "reason": "Pause"}
    assert (await post_form(client, url, off)).status_code == 303
    assert code not in [p.code for p in (await catalog.current_offer()).products]
    # Saving it as it is records nothing.
    assert (await post_form(client, url, off)).status_code == 303
    on = {**off, "active": "1", "reason": "Tilbake"}
    assert (await post_form(client, url, on)).status_code == 303
    assert code in [p.code for p in (await catalog.current_offer()).products]
    entries = await _audit(AuditKind.product_changed, since)
    assert [e.reason for e in entries] == ["Ny avtale", "Pause", "Tilbake"]
    page = await client.get("/staff/admin/catalog")
    assert page.status_code == 200 and "NX" in page.text

    bad = await post_form(client, url, {"name": "", "position": "x", "active": "2", "reason": ""})
    assert bad.status_code == 422
    for message in ("Skriv produktets navn.", "Skriv et helt tall fra 0 til 1000.", "Skriv en"):
        assert message in bad.text
    assert (await Product.objects().get(Product.id == product.id)).name == "NX"
    assert (await post_form(client, "/staff/admin/catalog/products/999999", on)).status_code == 404


# --- business settings -----------------------------------------------------------------------


async def test_the_settings_reach_receipts_availability_and_registration(client, other_client):
    admin = await _admin_signed_in(client)
    page = await client.get(SETTINGS_URL)
    assert page.status_code == 200 and "24.12, 31.12" in page.text
    since = await _last_audit_id()
    form = {
        "seller_name": "Brødrene Johnsen AS",
        "seller_org_number": "974 760 673",
        "seller_address": "Industriveien 1, 0150 Oslo",
        "extra_closed_days": "24.12, 31.12, 2.1",
        "low_balance_minutes": "120",
        "reason": "Nytt firmanavn og romjulsstengt",
    }
    assert (await post_form(client, SETTINGS_URL, form)).status_code == 303
    settings = await business.current()
    assert settings.seller.name == "Brødrene Johnsen AS"
    assert settings.seller.org_number == "974760673"
    assert settings.extra_closed_days == ((1, 2), (12, 24), (12, 31))
    [entry] = await _audit(AuditKind.settings_changed, since)
    assert entry.actor == admin.id and entry.reason == form["reason"]
    assert json.loads(entry.after)["extra_closed_days"] == "02.01, 24.12, 31.12"
    assert json.loads(entry.before)["low_balance_minutes"] == 60

    # Availability: 2 January is closed now (a weekday in 2029: a Tuesday).
    moment = datetime.datetime(2029, 1, 2, 10, 0, tzinfo=clock.OSLO)
    assert availability_at(moment).open_now
    assert not availability_at(moment, settings.extra_closed_days).open_now
    # Registration: a new company starts with the new threshold.
    registered = await register(other_client)
    company = await Company.objects().get(Company.org_number == registered["org_number"])
    assert company.low_balance_minutes == 120
    # Mails sign with the seller's new name.
    assert await password_reset.send_link(registered["email"])
    [mail] = await OutboxMail.objects().where(OutboxMail.recipient == registered["email"])
    assert "Brødrene Johnsen AS" in mail.text_body
    # Receipts name the seller.
    receipt = await orders.receipt(
        await User.objects().get(User.email == registered["email"]),
        (await _paid_order(company.id)).id,
    )
    assert receipt.seller.name == "Brødrene Johnsen AS"
    receipt_page = await other_client.get(
        f"/portal/orders/{(await _paid_order(company.id)).id}/receipt"
    )
    assert "Brødrene Johnsen AS" in receipt_page.text and "974 760 673" in receipt_page.text

    # The same again records nothing; bad input is refused and changes nothing.
    assert (await post_form(client, SETTINGS_URL, form)).status_code == 303
    assert len(await _audit(AuditKind.settings_changed, since)) == 1
    bad = {**form, "extra_closed_days": "31.02", "low_balance_minutes": "-1", "reason": ""}
    response = await post_form(client, SETTINGS_URL, bad)
    assert response.status_code == 422
    assert "Skriv dagene som dd.mm" in response.text
    assert "Skriv et helt antall minutter fra 0 til 12000." in response.text
    assert "Skriv en begrunnelse." in response.text
    assert await business.current() == settings
    bad_org = await post_form(client, SETTINGS_URL, {**form, "seller_org_number": "123"})
    assert bad_org.status_code == 422 and "Ugyldig organisasjonsnummer" in bad_org.text


async def _paid_order(company_id: int) -> Order:
    from tests.support import make_order

    existing = await Order.objects().where(Order.company == company_id).first()
    return existing or await make_order(company_id)


async def test_unset_settings_are_the_configurations():
    settings = await business.current()
    assert settings == business.defaults()
    assert settings.extra_closed_days == ((12, 24), (12, 31))
    assert settings.low_balance_minutes == 60


# --- who may --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["technician", "superuser", "member"])
async def test_only_admins_reach_the_catalog(client, role):
    product = await _product()
    if role == "technician":
        email = (await _staff("technician")).email
    else:
        company_id, email = await make_company()
        if role == "member":
            email = new_email("medlem")
            from backend.services.users import hash_password

            await User(
                email=email,
                name="Mia Medlem",
                role="member",
                company=company_id,
                password_hash=hash_password(PASSWORD),
            ).save()
    assert (await login(client, email)).status_code == 303
    for path in ("/staff/admin/catalog", PRICES_URL, SETTINGS_URL):
        assert (await client.get(path)).status_code == 403, path
    count, since = await PriceList.count(), await _last_audit_id()
    old = await catalog.prices_on(clock.today())
    posts = {
        PRICES_URL: _price_form(old, clock.today(), hourly_rate="1"),
        SETTINGS_URL: {"seller_name": "X", "extra_closed_days": "", "low_balance_minutes": "0"},
        "/staff/admin/catalog/products": {"code": "x", "name": "X", "reason": "x"},
        f"/staff/admin/catalog/products/{product.id}": {
            "name": "X",
            "position": "1",
            "active": "0",
            "reason": "x",
        },
    }
    for path, form in posts.items():
        assert (await post_form(client, path, form)).status_code == 403, path
    assert await PriceList.count() == count
    assert await _last_audit_id() == since
    assert (await Product.objects().get(Product.id == product.id)).active


async def test_the_admin_index_links_to_the_catalog(client):
    await _admin_signed_in(client)
    index = await client.get("/staff/admin")
    assert 'href="/staff/admin/catalog"' in index.text
    for path in ("/staff/admin/catalog", PRICES_URL, SETTINGS_URL):
        assert (await client.get(path)).status_code == 200, path


async def test_the_same_price_version_sent_twice_at_once_is_saved_once():
    """Two submits of one form at the same moment (PostgreSQL runs them side by side): one
    version, one audit entry; the second finds the first's prices in force already."""
    admin = await _staff("admin")
    prices = (await catalog.current_offer()).prices
    since = await _last_audit_id()
    day = clock.today() + datetime.timedelta(days=3)
    form = _price_form(prices, day, hourly_rate=_kroner(prices.hourly_rate_ore + 10_000))
    first, second = await asyncio.gather(
        *(catalog.add_price_version(admin, dict(form)) for _ in range(2))
    )
    assert first.id == second.id
    assert len(await _audit(AuditKind.price_changed, since)) == 1
    assert (await catalog.prices_on(day)).hourly_rate_ore == prices.hourly_rate_ore + 10_000
