"""Company data from Enhetsregisteret on the registration form (issue 11), against the
register's stand-in on loopback (tests/brreg_server.py): the org.nr. fills the company's name
and business address, a deleted, bankrupt or wound-up company is refused, and a register that
cannot be reached changes nothing."""

from __future__ import annotations

import dataclasses
import re
import socket
from urllib.parse import urlencode

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.config import PUBLIC_BRREG_API_URL, ConfigError, load_settings
from backend.tables import Company, User
from tests.brreg_server import entity
from tests.support import PRODUCTION_ENV, new_org_number, post_form, registration_form

REGION = {"HX-Request": "true", "HX-Target": "register-org"}

REFUSALS = {
    "konkurs": (
        200,
        {"konkurs": True, "konkursdato": "2026-10-02"},
        "Firmaet er konkurs ifølge Enhetsregisteret og kan ikke registreres.",
    ),
    "under-avvikling": (
        200,
        {"underAvvikling": True, "underAvviklingDato": "2026-09-15"},
        "Firmaet er under avvikling ifølge Enhetsregisteret og kan ikke registreres.",
    ),
    "tvangsavvikling": (
        200,
        {"underTvangsavviklingEllerTvangsopplosning": True},
        "Firmaet er under tvangsavvikling eller tvangsoppløsning ifølge Enhetsregisteret og kan"
        " ikke registreres.",
    ),
    "slettet": (
        200,
        {"slettedato": "2025-06-30"},
        "Firmaet er slettet i Enhetsregisteret og kan ikke registreres.",
    ),
    "410-gone": (410, None, "Firmaet er slettet i Enhetsregisteret og kan ikke registreres."),
}

FILLED = "Fylt inn fra Enhetsregisteret."
NOT_FOUND = "Fant ikke organisasjonsnummeret i Enhetsregisteret."


def lookup_url(org_number: str, **typed: str) -> str:
    fields = {"org_number": org_number, "company_name": "", "address": "", "postal_code": ""}
    return "/register/company?" + urlencode({**fields, "city": "", **typed})


def value_of(html: str, name: str) -> str:
    match = re.search(rf'<input id="f-{name}" name="{name}" type="text" value="([^"]*)"', html)
    assert match, f"no {name} field"
    return match.group(1)


def filled(html: str) -> set[str]:
    """The fields a lookup's answer fills in (out of band)."""
    return set(re.findall(r'<div id="field-(\w+)" hx-swap-oob="true"', html))


def org_number_error(html: str) -> str:
    match = re.search(r'<small id="d-org_number" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else ""


def answer(fake_register, status: int = 200, body: dict | bytes | None = None, **kw) -> str:
    number = new_org_number()
    if isinstance(body, dict) and status == 200:
        body = entity(number, **body)
    fake_register.answer(number, status, body, **kw)
    return number


# Settings


def test_development_looks_nothing_up_unless_told_and_production_asks_the_public_register():
    assert load_settings({"SECRET_KEY": "k" * 40}).brreg_api_url is None
    assert load_settings(PRODUCTION_ENV).brreg_api_url == PUBLIC_BRREG_API_URL
    assert load_settings({**PRODUCTION_ENV, "BRREG_API_URL": "off"}).brreg_api_url is None
    chosen = load_settings({"SECRET_KEY": "k" * 40, "BRREG_API_URL": "http://127.0.0.1:9/api/"})
    assert chosen.brreg_api_url == "http://127.0.0.1:9/api"
    with pytest.raises(ConfigError, match="BRREG_API_URL"):
        load_settings({"SECRET_KEY": "k" * 40, "BRREG_API_URL": "data.brreg.no"})


# The lookup (htmx, when the org.nr. changes)


async def test_the_org_number_fills_the_empty_name_and_business_address(
    register_client, fake_register
):
    number = answer(fake_register)
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"

    response = await register_client.get(lookup_url(spaced), headers=REGION)

    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<div id="register-org">')
    assert "<html" not in html
    assert value_of(html, "org_number") == spaced
    assert filled(html) == {"company_name", "address", "postal_code", "city"}
    # Each only if the user has not written in it meanwhile (app.js).
    assert html.count("data-fill-if-empty") == 4
    assert value_of(html, "company_name") == "Fjordverktøy AS"
    assert value_of(html, "address") == "Haakon VIIs gate 9, Bygg C"
    assert value_of(html, "postal_code") == "7042"
    assert value_of(html, "city") == "TRONDHEIM"
    assert FILLED in html
    assert fake_register.asked[-1] == number  # compact, as the register wants it


async def test_what_the_user_wrote_is_kept_and_the_register_only_offers_its_own(
    register_client, fake_register
):
    number = answer(fake_register)

    response = await register_client.get(
        lookup_url(number, company_name="Fjordverktøy Trondheim", postal_code="7010"),
        headers=REGION,
    )

    html = response.text
    assert filled(html) == {"address", "city"}  # the empty ones
    assert value_of(html, "address") == "Haakon VIIs gate 9, Bygg C"
    assert "Enhetsregisteret har andre opplysninger om firmaet:" in html
    assert "Firmanavn: Fjordverktøy AS" in html and "Postnummer: 7042" in html
    assert "Bruk opplysningene fra Enhetsregisteret" in html

    # The user takes the register's values: every field, whatever is written in it.
    html = (
        await register_client.get(
            f"/register/company?org_number={number}&use_register=1", headers=REGION
        )
    ).text
    assert filled(html) == {"company_name", "address", "postal_code", "city"}
    assert "data-fill-if-empty" not in html
    assert value_of(html, "company_name") == "Fjordverktøy AS"
    assert value_of(html, "postal_code") == "7042"


async def test_an_address_abroad_leaves_the_postal_code_to_the_user(register_client, fake_register):
    abroad = {
        "land": "Sverige",
        "landkode": "SE",
        "postnummer": "411 06",
        "poststed": "GÖTEBORG",
        "adresse": ["Kungsgatan 1"],
    }
    number = answer(fake_register, body={"forretningsadresse": abroad})

    html = (await register_client.get(lookup_url(number), headers=REGION)).text

    assert filled(html) == {"company_name", "address", "city"}
    assert value_of(html, "address") == "Kungsgatan 1"
    assert value_of(html, "city") == "GÖTEBORG"


@pytest.mark.parametrize("kind", list(REFUSALS))
async def test_a_deleted_bankrupt_or_wound_up_company_gets_its_message(
    register_client, fake_register, kind
):
    status, body, message = REFUSALS[kind]
    number = answer(fake_register, status, body)

    html = (await register_client.get(lookup_url(number), headers=REGION)).text

    assert org_number_error(html) == message
    assert 'aria-invalid="true"' in html
    assert filled(html) == set()  # nothing filled in for it


async def test_a_number_the_register_does_not_know_says_so_without_an_error(
    register_client, fake_register
):
    number = new_org_number()  # the stand-in answers 404 for every number it was not given

    html = (await register_client.get(lookup_url(number, city="Bodø"), headers=REGION)).text

    assert NOT_FOUND in html
    assert org_number_error(html) == "" and filled(html) == set()
    assert fake_register.asked[-1] == number


async def test_an_invalid_org_number_gets_its_message_and_is_not_looked_up(
    register_client, fake_register
):
    asked = len(fake_register.asked)

    html = (await register_client.get(lookup_url("974760674"), headers=REGION)).text

    assert org_number_error(html).startswith("Ugyldig organisasjonsnummer")
    assert len(fake_register.asked) == asked


async def test_the_lookup_without_javascript_is_the_whole_form_filled_in(
    register_client, fake_register
):
    number = answer(fake_register)

    response = await register_client.get(lookup_url(number))

    assert response.text.startswith("<!doctype html>")
    assert 'id="register-form"' in response.text and 'action="/register"' in response.text
    assert value_of(response.text, "company_name") == "Fjordverktøy AS"


async def test_the_refusal_in_english(register_client, fake_register):
    number = answer(fake_register, 410)
    await register_client.get("/language/en")

    html = (await register_client.get(lookup_url(number), headers=REGION)).text

    assert org_number_error(html) == (
        "The company is deleted in the Central Coordinating Register for Legal Entities"
        " (Enhetsregisteret) and cannot be registered."
    )


# A register that cannot be reached


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


UNREACHABLE = {
    "server-error": (500, None),
    "not-json": (200, b"<html><body>Vedlikehold</body></html>"),
    "wrong-shape": (200, b'{"navn": 42, "konkurs": "kanskje"}'),
    "bad-gateway": (502, b"Bad Gateway"),
}


@pytest.mark.parametrize("kind", list(UNREACHABLE))
async def test_a_register_that_answers_nonsense_changes_nothing(
    register_client, fake_register, kind
):
    status, body = UNREACHABLE[kind]
    number = answer(fake_register, status, body)

    html = (
        await register_client.get(lookup_url(number, company_name="Eget Navn AS"), headers=REGION)
    ).text

    assert filled(html) == set()
    assert org_number_error(html) == "" and "Enhetsregisteret" not in html
    form = registration_form(org_number=number)
    assert (await post_form(register_client, "/register", form)).status_code == 303


async def test_a_register_slower_than_two_seconds_is_not_waited_for(register_client, fake_register):
    number = answer(fake_register, delay=3.0)

    html = (await register_client.get(lookup_url(number), headers=REGION)).text
    assert filled(html) == set() and "Enhetsregisteret" not in html

    form = registration_form(org_number=number)
    response = await post_form(register_client, "/register", form)
    assert response.status_code == 303
    assert await Company.exists().where(Company.org_number == number)


async def test_a_register_that_refuses_connections_changes_nothing(settings):
    closed = dataclasses.replace(
        settings, brreg_api_url=f"http://127.0.0.1:{_closed_port()}/enhetsregisteret/api"
    )
    app = create_app(closed, db_pool=False, background_jobs=False)
    async with AsyncTestClient(app=app) as client:
        number = new_org_number()
        html = (await client.get(lookup_url(number, city="Bodø"), headers=REGION)).text
        assert filled(html) == set()
        assert org_number_error(html) == "" and "Enhetsregisteret" not in html
        form = registration_form(org_number=number)
        assert (await post_form(client, "/register", form)).status_code == 303


# At submit


@pytest.mark.parametrize("kind", list(REFUSALS))
async def test_registration_of_a_refused_company_is_refused_at_submit(
    register_client, fake_register, kind
):
    status, body, message = REFUSALS[kind]
    number = answer(fake_register, status, body)
    form = registration_form(org_number=number)

    response = await post_form(register_client, "/register", form)

    assert response.status_code == 422
    assert org_number_error(response.text) == message
    assert value_of(response.text, "company_name") == form["company_name"]  # nothing lost
    assert not await Company.exists().where(Company.org_number == number)
    assert not await User.exists().where(User.email == form["email"])


async def test_an_active_company_registers_with_what_the_user_wrote(register_client, fake_register):
    number = answer(fake_register)
    form = registration_form(org_number=number, company_name="Fjordverktøy (Trondheim) AS")

    response = await post_form(register_client, "/register", form)

    assert response.status_code == 303
    company = await Company.objects().get(Company.org_number == number)
    assert company.name == "Fjordverktøy (Trondheim) AS"
    assert fake_register.asked[-1] == number


async def test_a_number_the_register_does_not_know_still_registers(register_client):
    form = registration_form()
    assert (await post_form(register_client, "/register", form)).status_code == 303


# Without a register (development, `make run`)


async def test_without_a_register_the_lookup_leaves_the_form_as_it_is(client):
    number = new_org_number()

    html = (await client.get(lookup_url(number, company_name="Mitt AS"), headers=REGION)).text

    assert filled(html) == set() and value_of(html, "org_number") == number
    assert org_number_error(html) == "" and "Enhetsregisteret" not in html


async def test_lookups_from_one_address_are_rate_limited(client):
    for _ in range(20):
        assert (await client.get(lookup_url(new_org_number()), headers=REGION)).status_code == 200
    assert (await client.get(lookup_url(new_org_number()), headers=REGION)).status_code == 429
