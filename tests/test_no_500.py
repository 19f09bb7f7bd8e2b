"""No request ends in a 500 (issue 8): ids no row can have, digits int() reads otherwise than
str.isdigit, control characters in text, and internal details kept from the public."""

from __future__ import annotations

import datetime
import logging
import re
import warnings
from urllib.parse import quote

import pytest
from litestar.routes import HTTPRoute
from piccolo.engine.postgres import PostgresEngine

from backend.services import catalog, clock, ledger, tickets, validation
from backend.services.users import create_staff
from backend.tables import (
    Company,
    LedgerEntry,
    Order,
    Ticket,
    TicketMessage,
    TimeEntry,
    User,
)
from tests.support import (
    PASSWORD,
    login,
    make_company,
    new_email,
    new_org_number,
    post_form,
    register,
)

# Digits str.isdigit accepts: "²" int() refuses (a ValueError, once a 500); "١٢" (Arabic-Indic)
# int() reads as 12; a long run of digits int() refuses too (Python's 4300-digit limit).
STRANGE_NUMBERS = ["²", "1²", "١٢", "٣", "9" * 5000, "1e3", "+5", "1_0", "5.0"]
CONTROL_TEXTS = [
    "Før\x00etter",
    "bell\x07",
    "vertikal\x0btab",
    "esc\x1b[31m",
    "c1\x85",
    "cr\ralene",
]


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def sign_in_staff(client, role: str = "admin") -> User:
    email = new_email(role)
    user = await create_staff(email=email, name=f"Stab {role}", role=role, password=PASSWORD)
    assert (await login(client, email)).status_code == 303
    return user


async def sign_in_superuser(client) -> tuple[int, User]:
    company_id, email = await make_company("Kantfirma AS")
    assert (await login(client, email)).status_code == 303
    return company_id, await User.objects().get(User.email == email)


async def own_ticket(superuser: User) -> Ticket:
    ticket = await tickets.open_ticket(
        superuser,
        {"product": "inventor", "subject": "Kantsak", "description": "Noe henger ved lagring."},
    )
    # Opened a week ago, so time can be logged on earlier days.
    ticket.created_at = clock.now() - datetime.timedelta(days=7)
    await ticket.save([Ticket.created_at])
    return ticket


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<small id="d-{field}" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else ""


# Ids


def int_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app with an int path parameter."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        if not any(p.type is int for p in route.path_parameters.values()):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                found.append((method, route.path))
    return sorted(found)


def with_id(template: str, value: str) -> str:
    return re.sub(r"\{[a-z_]+:int\}", value, template)


async def request(client, method: str, path: str):
    if method == "GET":
        return await client.get(path)
    return await post_form(client, path, {})


def test_the_walk_finds_the_routes_with_ids(app):
    # If a route is renamed the walk below still covers it; this only proves it walks.
    paths = {path for _, path in int_routes(app)}
    assert "/portal/orders/{order_id:int}/receipt" in paths
    assert "/portal/orders/{order_id:int}/receipt.pdf" in paths
    assert "/staff/time-entries/{entry_id:int}/void" in paths
    assert "/portal/tickets/{ticket_id:int}/attachments/{attachment_id:int}" in paths
    assert "/staff/tickets/{ticket_id:int}/attachments/{attachment_id:int}/image" in paths
    assert len(paths) >= 10


@pytest.mark.parametrize("value", [str(2**63), str(2**64), str(2**31), "0", "-1"])
async def test_every_route_with_an_id_answers_404_to_an_id_no_row_has(
    app, client, other_client, value
):
    await sign_in_superuser(client)
    await sign_in_staff(other_client, "admin")
    as_role = {"/portal/": client, "/staff/": other_client}

    for method, template in int_routes(app):
        prefix = next((p for p in as_role if template.startswith(p)), None)
        assert prefix, f"which role is {template} for? add it to the walk"
        response = await request(as_role[prefix], method, with_id(template, value))
        assert response.status_code == 404, (method, template, value, response.status_code)


@pytest.mark.parametrize("spelling", ["+{id}", "0{id}", "{arabic}", " {id}"])
async def test_an_id_is_plain_ascii_digits(client, spelling):
    _, superuser = await sign_in_superuser(client)
    ticket = await own_ticket(superuser)
    arabic = str(ticket.id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert (await client.get(f"/portal/tickets/{ticket.id}")).status_code == 200

    response = await client.get(f"/portal/tickets/{spelling.format(id=ticket.id, arabic=arabic)}")

    assert response.status_code == 404


# Whole numbers in forms and query strings


@pytest.mark.parametrize("value", STRANGE_NUMBERS)
def test_whole_numbers_are_ascii_digits_only(value):
    assert validation.whole_number(value, -(10**6), 10**6) is None


@pytest.mark.parametrize(
    ("value", "number"), [("7", 7), (" 12 ", 12), ("-30", -30), ("0", 0), ("600", 600)]
)
def test_whole_numbers_within_bounds(value, number):
    assert validation.whole_number(value, -600, 600) == number
    assert validation.whole_number(value, number + 1, 10**6) is None


def test_a_postal_code_is_four_ascii_digits():
    assert validation.postal_code("0150") == "0150"
    with pytest.raises(validation.FieldError):
        validation.postal_code("٠١٥٠")


@pytest.mark.parametrize("hours", STRANGE_NUMBERS)
async def test_top_up_hours_are_ascii_digits(client, hours):
    company_id, _ = await sign_in_superuser(client)

    response = await post_form(
        client, "/portal/orders", {"kind": "topup", "hours": hours, "products": "inventor"}
    )

    assert response.status_code == 422
    assert "Velg et helt antall timer fra 1 til 200." in response.text
    assert await Order.count().where(Order.company == company_id) == 0


@pytest.mark.parametrize("minutes", STRANGE_NUMBERS)
async def test_time_entry_minutes_are_ascii_digits(client, other_client, minutes):
    _, superuser = await sign_in_superuser(client)
    ticket = await own_ticket(superuser)
    await sign_in_staff(other_client, "technician")

    response = await post_form(
        other_client,
        f"/staff/tickets/{ticket.id}/time",
        {
            "minutes": minutes,
            "performed_on": clock.today().isoformat(),
            "channel": "phone",
            "note": "",
        },
    )

    assert response.status_code == 422
    assert field_error(response.text, "minutes") == "Skriv inn hele minutter fra 1 til 600."
    assert await TimeEntry.count().where(TimeEntry.ticket == ticket.id) == 0


@pytest.mark.parametrize("minutes", [*STRANGE_NUMBERS, "-²", "--5"])
async def test_adjustment_minutes_are_ascii_digits(client, minutes):
    company_id, _ = await make_company()
    await sign_in_staff(client, "admin")

    response = await post_form(
        client,
        f"/staff/companies/{company_id}/adjustments",
        {"minutes": minutes, "reason": "Kompensasjon", "idempotency_key": "k1"},
    )

    assert response.status_code == 422
    assert "Skriv inn hele minutter, positivt eller negativt" in response.text
    assert await LedgerEntry.count().where(LedgerEntry.company == company_id) == 0


async def test_negative_adjustments_still_take_minutes(client):
    company_id, _ = await make_company()
    await sign_in_staff(client, "admin")
    url = f"/staff/companies/{company_id}/adjustments"

    for minutes, key in (("90", "k1"), (" -30 ", "k2")):
        form = {
            "minutes": minutes,
            "reason": "Retting",
            "idempotency_key": key,
            "products": ["inventor"],
        }
        assert (await post_form(client, url, form)).status_code == 303

    assert await ledger.balance(company_id, clock.today()) == 60


@pytest.mark.parametrize("value", [*STRANGE_NUMBERS, str(2**63), "-1"])
async def test_queue_and_history_filters_with_strange_numbers_are_ignored(
    client, other_client, value
):
    await sign_in_superuser(client)
    await sign_in_staff(other_client)

    for response in (
        await other_client.get("/staff", params={"company": value, "page": value}),
        await other_client.get("/staff/tickets/new", params={"company": value}),
        await client.get("/portal/tickets", params={"after": value}),
        await client.get(
            "/portal/tickets",
            params={"after": value},
            headers={"HX-Request": "true", "HX-Target": "ticket-list"},
        ),
    ):
        assert response.status_code == 200, response.url


@pytest.mark.parametrize("company", ["²", "١", str(2**63)])
async def test_a_staff_ticket_for_a_strange_company_number_is_refused(client, company):
    await sign_in_staff(client)
    before = await Ticket.count()

    response = await post_form(
        client,
        "/staff/tickets",
        {
            "company": company,
            "product": "inventor",
            "subject": "Telefon",
            "description": "Ringte om lisens.",
            "channel": "phone",
        },
    )

    assert response.status_code == 422 and "Velg et firma." in response.text
    assert await Ticket.count() == before


# Control characters


@pytest.mark.parametrize("text", CONTROL_TEXTS)
async def test_control_characters_in_a_ticket_are_refused_and_the_input_kept(client, text):
    company_id, _ = await sign_in_superuser(client)

    response = await post_form(
        client,
        "/portal/tickets",
        {"product": "inventor", "subject": "Emne", "description": f"Beskrivelse {text}"},
    )

    assert response.status_code == 422
    assert field_error(response.text, "description") == (
        "Teksten inneholder kontrolltegn som ikke er tillatt."
    )
    assert 'value="Emne"' in response.text and "Beskrivelse " in response.text
    assert await Ticket.count().where(Ticket.company == company_id) == 0


@pytest.mark.parametrize("text", CONTROL_TEXTS)
async def test_control_characters_in_replies_notes_and_reasons_are_refused(
    client, other_client, text
):
    _, superuser = await sign_in_superuser(client)
    ticket = await own_ticket(superuser)
    staff = await sign_in_staff(other_client, "technician")
    entry = await tickets.log_time_from_form(
        staff, ticket, {"minutes": "15", "performed_on": "", "channel": "phone", "note": ""}
    )
    posts = [
        (client, f"/portal/tickets/{ticket.id}/messages", {"body": text}),
        (other_client, f"/staff/tickets/{ticket.id}/messages", {"body": text}),
        (other_client, f"/staff/tickets/{ticket.id}/messages", {"body": text, "internal": "1"}),
        (
            other_client,
            f"/staff/tickets/{ticket.id}/time",
            {"minutes": "20", "performed_on": "", "channel": "phone", "note": text},
        ),
        (other_client, f"/staff/time-entries/{entry.id}/void", {"reason": text}),
    ]

    for who, path, form in posts:
        response = await post_form(who, path, form)
        assert response.status_code == 422, path
        assert "Teksten inneholder kontrolltegn som ikke er tillatt." in response.text, path

    assert await TicketMessage.count().where(TicketMessage.ticket == ticket.id) == 0
    assert await TimeEntry.count().where(TimeEntry.ticket == ticket.id) == 1
    assert (await TimeEntry.objects().get(TimeEntry.id == entry.id)).voided_at is None


async def test_control_characters_in_registration_and_company_details_are_refused(client):
    refused = await post_form(
        client,
        "/register",
        {
            "company_name": "Null\x00 AS",
            "org_number": "974760673",
            "address": "Gata 1",
            "postal_code": "0150",
            "city": "Oslo",
            "name": "Kari",
            "email": new_email(),
            "phone": "+4722334455",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert refused.status_code == 422
    assert "kontrolltegn" in refused.text and 'value="Gata 1"' in refused.text
    assert await Company.count().where(Company.name.like("Null%")) == 0

    await register(client)
    form = {"address": "Ny\x00vei 2", "postal_code": "7030", "city": "Trondheim"}
    form.update(name="Kari Nordmann", phone="+47 73 12 34 56")
    response = await post_form(client, "/portal/company", form)
    assert response.status_code == 422 and "kontrolltegn" in response.text


async def test_control_characters_in_sign_in_and_orders_are_refused(client):
    signing_in = await post_form(
        client, "/login", {"email": "sjef\x00@example.no", "password": "hemmelig\x00"}
    )
    assert signing_in.status_code == 422 and "kontrolltegn" in signing_in.text

    company_id, _ = await sign_in_superuser(client)
    ordering = await post_form(
        client, "/portal/orders", {"kind": "topup", "hours": "5\x00", "products": "inventor"}
    )
    assert ordering.status_code == 422
    assert 'id="topup-form"' in ordering.text and "kontrolltegn" in ordering.text
    assert await Order.count().where(Order.company == company_id) == 0


@pytest.mark.parametrize(
    "changed",
    [
        {"current_password": "riktig\x00"},
        {"new_password": "nytt-passord\x00-2", "new_password_confirm": "nytt-passord\x00-2"},
        {"current_password": "9" * 5000},
        {"new_password": "x" * 5000, "new_password_confirm": "x" * 5000},
        {"ukjent": "felt"},
    ],
)
async def test_control_characters_and_odd_input_in_a_password_change_are_refused(client, changed):
    _, superuser = await sign_in_superuser(client)
    form = {
        "current_password": PASSWORD,
        "new_password": "nytt-passord-2",
        "new_password_confirm": "nytt-passord-2",
        **changed,
    }

    response = await post_form(client, "/account/password", form)

    assert response.status_code == 422 and 'id="password-form"' in response.text
    assert (await User.objects().get(User.id == superuser.id)).password_hash == (
        superuser.password_hash
    )
    assert (await client.get("/portal")).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {"email": "sjef\x00@example.no"},
        {"email": "x" * 5000},
        {"email": "æøå@"},
        {"email": "a@example.no", "ukjent": "felt"},
        {},
    ],
)
async def test_odd_input_in_a_forgotten_password_request_is_refused(client, form):
    response = await post_form(client, "/password/forgot", form)
    assert response.status_code == 422 and 'id="forgot-form"' in response.text


@pytest.mark.parametrize(
    "changed",
    [
        {"new_email": "ny\x00@example.no"},
        {"new_email": "x" * 5000},
        {"current_password": "riktig\x00"},
        {"current_password": "9" * 5000},
        {"ukjent": "felt"},
    ],
)
async def test_odd_input_in_an_email_change_is_refused(client, changed):
    _, superuser = await sign_in_superuser(client)
    form = {"new_email": new_email("ny"), "current_password": PASSWORD, **changed}

    response = await post_form(client, "/account/email", form)

    assert response.status_code == 422 and 'id="email-form"' in response.text
    assert (await User.objects().get(User.id == superuser.id)).email == superuser.email


@pytest.mark.parametrize(
    "token", ["x", "a" * 43, "9" * 5000, "%00", "%C3%A6%C3%B8", "..%2Flogin", "%E2%80%AE"]
)
@pytest.mark.parametrize("path", ["/password/reset/", "/account/email/confirm/"])
async def test_made_up_links_are_refused_calmly(client, path, token):
    page = await client.get(path + token)
    assert page.status_code in (404, 410), page.status_code
    form = {"new_password": "nytt-passord-12", "new_password_confirm": "nytt-passord-12"}
    posted = await post_form(client, path + token, form if "reset" in path else {})
    assert posted.status_code in (404, 422), posted.status_code


async def test_line_breaks_and_tabs_from_a_textarea_are_text(client):
    _, superuser = await sign_in_superuser(client)
    ticket = await own_ticket(superuser)

    response = await post_form(
        client, f"/portal/tickets/{ticket.id}/messages", {"body": "Linje 1\r\nLinje\t2\n"}
    )

    assert response.status_code == 303
    [message] = await TicketMessage.objects().where(TicketMessage.ticket == ticket.id)
    assert "Linje\t2" in message.body


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "%\x00", "\x7f"])
async def test_control_characters_in_search_filters_are_ignored(client, other_client, value):
    await sign_in_superuser(client)
    await sign_in_staff(other_client)
    params = {"q": value, "product": value, "status": value, "after": value}

    for response in (
        await other_client.get("/staff", params=params),
        await client.get("/portal/tickets", params=params),
    ):
        assert response.status_code == 200, response.url


@pytest.mark.parametrize(
    "value",
    ["\x00", "974\x00760673", "9" * 5000, "١٢٣٤٥٦٧٨٩", "²", "974 760 673" * 50, "%00", ""],
)
async def test_the_company_lookup_answers_any_query(register_client, fake_register, value):
    """GET /register/company (Enhetsregisteret, issue 11) with odd values in every field, and
    a register that answers an entity full of odd text."""
    number = new_org_number()
    fake_register.answer(
        number,
        body={
            "organisasjonsnummer": number,
            "navn": "Null\x00 <b>AS</b> " + "x" * 500,
            "forretningsadresse": {"adresse": ["\x1b[31m", ""], "postnummer": "12\x0034"},
        },
    )
    params = {name: value for name in ("company_name", "address", "postal_code", "city")}
    for org_number in (value, number):
        response = await register_client.get(
            "/register/company",
            params={**params, "org_number": org_number, "extra": value},
            headers={"HX-Request": "true", "HX-Target": "register-org"},
        )
        assert response.status_code == 200, (org_number[:20], response.status_code)
        assert "<b>AS</b>" not in response.text
        assert "\x00" not in response.text and "\x1b" not in response.text


# Nothing internal shown


async def test_healthz_tells_the_public_only_unavailable_and_logs_why(client, caplog):
    working = Company._meta.db
    with warnings.catch_warnings():  # the engine warns at creation that it cannot connect
        warnings.simplefilter("ignore")
        Company._meta.db = PostgresEngine(
            config={"dsn": "postgresql://hemmelig_bruker@127.0.0.1:1/hemmelig_base"}
        )
    try:
        with caplog.at_level(logging.ERROR, logger="portal.health"):
            response = await client.get("/healthz")
    finally:
        Company._meta.db = working

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unavailable"}
    assert "hemmelig" not in response.text and "127.0.0.1" not in response.text
    [record] = [r for r in caplog.records if r.name == "portal.health"]
    assert record.exc_info is not None


# The customer API: every query parameter and ticket number, strangely written


API_ODD_VALUES = [
    *STRANGE_NUMBERS,
    *CONTROL_TEXTS,
    " ",
    "x" * 5000,
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "L0",
    "T999999999",
    "L2147483648",
    "2147483648",
    "999999999",
    "%",
    "_",
    "'; DROP TABLE ticket; --",
]


async def test_no_api_parameter_or_ticket_number_ends_in_a_500(client):
    _, superuser = await sign_in_superuser(client)
    await own_ticket(superuser)
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    queries = {
        path: [p["name"] for p in operation["get"].get("parameters", []) if p["in"] == "query"]
        for path, operation in paths.items()
        if path.startswith("/api/")
    }
    assert set(queries) >= {"/api/v1/tickets", "/api/v1/usage"}

    for path, names in queries.items():
        for name in names:
            for value in API_ODD_VALUES:
                response = await client.get(path, params={name: value})
                assert response.status_code in (200, 400), (path, name, value)
                assert response.headers["content-type"].startswith("application/json")
    for value in [*API_ODD_VALUES, "SUP-", "SUP-0", "SUP-" + "9" * 10, "-1", "%2F", "..%2F"]:
        response = await client.get(f"/api/v1/tickets/{quote(value, safe='%')}")
        assert response.status_code in (200, 404), value
