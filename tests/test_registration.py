"""Registration: the public form contract and every rule behind it (issue 2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.tables import Company, Role, User
from tests.support import PASSWORD, new_email, new_org_number, post_form, registration_form

HTMX = {"HX-Request": "true"}


async def test_success_creates_company_and_superuser_and_signs_in(client):
    form = registration_form(org_number="")
    form["org_number"] = new_org_number()
    response = await post_form(client, "/register", form)

    assert response.status_code == 303
    assert response.headers["location"] == "/portal"
    company = await Company.objects().get(Company.org_number == form["org_number"])
    user = await User.objects().get(User.email == form["email"])
    assert company.name == "Presisjon Maskin AS"
    assert user.role == Role.superuser.value and user.company == company.id
    assert user.phone == "+4773123456"  # stored as E.164
    assert PASSWORD not in user.password_hash

    dashboard = await client.get("/portal")
    assert dashboard.status_code == 200
    assert "Presisjon Maskin AS" in dashboard.text
    assert "Kari Nordmann" in dashboard.text
    assert "Ingen avtale ennå" in dashboard.text


async def test_htmx_success_answers_with_client_redirect(client):
    response = await post_form(client, "/register", registration_form(), headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/portal"


@pytest.mark.parametrize(
    "typed", ["974 760 673", "974760673", " 974-760-673 "], ids=["spaced", "compact", "dashed"]
)
async def test_org_number_is_accepted_in_common_formats_and_stored_compact(client, typed):
    # The demo number may exist from another test, so use a fresh valid one in the same shape.
    number = new_org_number()
    typed = (
        typed.replace("974760673", number)
        .replace("974 760 673", f"{number[:3]} {number[3:6]} {number[6:]}")
        .replace("974-760-673", f"{number[:3]}-{number[3:6]}-{number[6:]}")
    )
    response = await post_form(client, "/register", registration_form(org_number=typed))
    assert response.status_code == 303
    assert await Company.exists().where(Company.org_number == number)


@pytest.mark.parametrize(
    "org_number",
    ["974760674", "97476067", "9747606730", "ABCDEFGHI", "123", ""],
    ids=["bad-checksum", "too-short", "too-long", "letters", "tiny", "empty"],
)
async def test_bad_org_numbers_are_rejected(client, org_number):
    form = registration_form(org_number=org_number)
    response = await post_form(client, "/register", form)
    assert response.status_code == 422
    assert "organisasjonsnummer" in response.text.lower()
    assert not await User.exists().where(User.email == form["email"])


async def test_duplicate_org_number_is_rejected_in_any_format(client, other_client):
    first = registration_form()
    assert (await post_form(client, "/register", first)).status_code == 303
    number = first["org_number"]
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    second = registration_form(org_number=spaced)

    response = await post_form(other_client, "/register", second)

    assert response.status_code == 422
    assert "Dette organisasjonsnummeret er allerede registrert." in response.text
    assert not await User.exists().where(User.email == second["email"])
    assert await Company.count().where(Company.org_number == number) == 1


async def test_duplicate_email_is_rejected_whatever_its_case(client, other_client):
    first = registration_form()
    assert (await post_form(client, "/register", first)).status_code == 303
    second = registration_form(email=first["email"].upper())

    response = await post_form(other_client, "/register", second)

    assert response.status_code == 422
    assert "Det finnes allerede en bruker med denne e-postadressen." in response.text
    assert not await Company.exists().where(Company.org_number == second["org_number"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("password", "kort-pass", "Passordet må ha minst 10 tegn."),
        ("password", "x" * 129, "Passordet kan ha høyst 128 tegn."),
        ("email", "ikke-en-adresse", "Ugyldig e-postadresse."),
        ("email", "", "Skriv inn e-postadressen."),
        ("phone", "abc", "Ugyldig telefonnummer."),
        ("phone", "123", "Skriv inn et gyldig norsk telefonnummer (8 siffer)."),
        ("phone", "+46 8 123 456 78", "Skriv inn et gyldig norsk telefonnummer (8 siffer)."),
        ("postal_code", "70300", "Postnummeret skal være fire siffer."),
        ("company_name", "   ", "Feltet må fylles ut."),
        ("city", "", "Feltet må fylles ut."),
    ],
)
async def test_invalid_field_gets_its_norwegian_message(client, field, value, message):
    form = registration_form(**{field: value})
    if field == "password":
        form["password_confirm"] = value
    response = await post_form(client, "/register", form)
    assert response.status_code == 422
    assert message in response.text
    assert f'required aria-invalid="true" aria-describedby="d-{field}"' in response.text


async def test_password_boundaries(client):
    assert (
        await post_form(
            client, "/register", registration_form(password="x" * 10, password_confirm="x" * 10)
        )
    ).status_code == 303
    assert (
        await post_form(
            client, "/register", registration_form(password="y" * 128, password_confirm="y" * 128)
        )
    ).status_code == 303


async def test_mismatched_confirmation_is_rejected(client):
    response = await post_form(
        client, "/register", registration_form(password_confirm="noe-helt-annet-1")
    )
    assert response.status_code == 422
    assert "Passordene er ikke like." in response.text


async def test_every_error_is_shown_at_once_and_typed_values_are_kept(client):
    form = registration_form(org_number="123", email="feil", phone="abc", password="kort")
    response = await post_form(client, "/register", form)

    assert response.status_code == 422
    text = response.text
    for message in (
        "Ugyldig organisasjonsnummer",
        "Ugyldig e-postadresse.",
        "Ugyldig telefonnummer.",
        "Passordet må ha minst 10 tegn.",
        "Passordene er ikke like.",
    ):
        assert message in text
    assert 'value="Presisjon Maskin AS"' in text
    assert 'value="Verkstedveien 12"' in text
    assert 'value="feil"' in text
    assert "kort" not in text.replace("kort-", "")  # the password is never echoed
    assert (
        not await Company.exists()
        .where(Company.name == "Presisjon Maskin AS")
        .where(Company.org_number == "123")
    )


async def test_htmx_error_answers_with_the_form_fragment_only(client):
    response = await post_form(
        client, "/register", registration_form(org_number="123"), headers=HTMX
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith("<form")
    assert "<html" not in response.text
    assert "Ugyldig organisasjonsnummer" in response.text


async def test_unknown_fields_are_refused_and_nothing_is_created(client):
    form = registration_form()
    form["role"] = "admin"
    response = await post_form(client, "/register", form)
    assert response.status_code == 422
    assert "ukjente felt" in response.text
    assert not await User.exists().where(User.email == form["email"])


async def test_script_in_company_name_is_shown_escaped(client):
    form = registration_form(company_name='<script>alert("x")</script> AS')
    assert (await post_form(client, "/register", form)).status_code == 303
    dashboard = await client.get("/portal")
    assert "<script>alert" not in dashboard.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; AS" in dashboard.text


async def test_registered_email_can_sign_in_with_other_case(client, other_client):
    form = registration_form(email=new_email("Stor").replace("stor", "Stor"))
    assert (await post_form(client, "/register", form)).status_code == 303
    response = await post_form(
        other_client, "/login", {"email": form["email"].upper(), "password": PASSWORD}
    )
    assert response.status_code == 303


async def test_registrations_from_one_address_are_rate_limited(client):
    for _ in range(20):
        response = await post_form(client, "/register", registration_form(org_number="1"))
        assert response.status_code == 422
    form = registration_form()
    response = await post_form(client, "/register", form)
    assert response.status_code == 429
    assert "For mange forsøk" in response.text
    assert not await User.exists().where(User.email == form["email"])


@pytest.fixture(scope="module")
def own_server() -> Iterator[str]:
    """A served portal of this module's own: the registrations it counts from 127.0.0.1 do not
    use up the session's live server's hourly budget."""
    from tests.conftest import _serve

    yield from _serve("backend.app:create_app", {"PORTAL_BASE_URL": "{base_url}"})


async def test_a_spoofed_forwarded_for_does_not_reset_the_registration_limit(own_server):
    """Served as in production with no proxy configured (issue 8)."""
    import httpx

    async with httpx.AsyncClient(base_url=own_server, timeout=30) as client:
        for attempt in range(20):
            response = await post_form(
                client,
                "/register",
                registration_form(org_number="1"),
                headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
            )
            assert response.status_code == 422
        form = registration_form()
        response = await post_form(
            client, "/register", form, headers={"X-Forwarded-For": "198.51.100.1"}
        )
    assert response.status_code == 429
    assert not await User.exists().where(User.email == form["email"])
