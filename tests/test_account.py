"""Account self-service (issue 11): every signed-in user changes their own password, which ends
their other sessions, and keeps their choice of language on every browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from backend.services import users
from backend.services.users import create_staff
from backend.tables import BrowserSession, User
from tests.support import (
    PASSWORD,
    csrf_token,
    login,
    make_company,
    new_email,
    post_form,
    register,
    registration_form,
)

NEW_PASSWORD = "nytt-hemmelig-passord-2"
WRONG = "Passordet er feil. Passordet ditt er ikke endret."
CHANGED = "Passordet er byttet."
TOO_MANY = "For mange mislykkede innlogginger"


@pytest.fixture
async def third_client(app) -> AsyncIterator[AsyncTestClient]:
    """A third browser, signed in as nobody yet."""
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<small id="d-{field}" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else ""


def session_cookie(response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "session":
            return rest.split(";")[0]
    return None


async def change(client, current: str, new: str = NEW_PASSWORD, confirm: str | None = None):
    return await post_form(
        client,
        "/account/password",
        {
            "current_password": current,
            "new_password": new,
            "new_password_confirm": new if confirm is None else confirm,
        },
    )


async def signed_in(client) -> bool:
    response = await client.get("/portal", follow_redirects=False)
    return response.status_code == 200


async def password_hash(email: str) -> str:
    user = await User.objects().get(User.email == email)
    return user.password_hash


async def two_browsers(client, other_client) -> str:
    """A superuser signed in on two browsers: their e-mail."""
    _, email = await make_company()
    assert (await login(client, email)).status_code == 303
    assert (await login(other_client, email)).status_code == 303
    return email


async def test_the_page_is_for_the_signed_in_and_linked_from_the_menu(client):
    response = await client.get("/account/password", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account/password"

    _, email = await make_company()
    await login(client, email)
    page = await client.get("/account/password")
    assert page.status_code == 200 and 'id="password-form"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert 'href="/account/password"' in (await client.get("/portal")).text


async def test_a_wrong_current_password_changes_nothing(client, other_client, third_client):
    email = await two_browsers(client, other_client)
    before = await password_hash(email)

    response = await change(client, "feil-passord-99")

    assert response.status_code == 422
    assert field_error(response.text, "current_password") == WRONG
    assert CHANGED not in response.text
    assert 'value="feil-passord-99"' not in response.text
    assert await password_hash(email) == before
    assert await signed_in(client) and await signed_in(other_client)
    assert (await login(third_client, email, NEW_PASSWORD)).status_code == 422
    assert (await login(third_client, email)).status_code == 303


async def test_a_missing_current_password_is_asked_for(client):
    _, email = await make_company()
    await login(client, email)
    before = await password_hash(email)

    response = await change(client, "")

    assert response.status_code == 422
    assert field_error(response.text, "current_password") == "Skriv inn passordet du har nå."
    assert await password_hash(email) == before


async def test_wrong_current_passwords_count_against_the_sign_in_throttle(
    client, other_client, third_client
):
    email = await two_browsers(client, other_client)
    before = await password_hash(email)
    for _ in range(5):
        assert (await change(client, "feil-passord-99")).status_code == 422

    sixth = await change(client, PASSWORD)
    assert sixth.status_code == 429 and TOO_MANY in sixth.text
    # The same counts as signing in: the e-mail cannot be guessed at on the sign-in page either.
    assert (await login(third_client, email)).status_code == 429
    assert (await login(third_client, email, NEW_PASSWORD)).status_code == 429
    assert await password_hash(email) == before
    assert await signed_in(other_client)


async def test_a_too_weak_new_password_gets_the_registration_rules_message(
    client, other_client, third_client
):
    email = await two_browsers(client, other_client)
    before = await password_hash(email)
    # What registration says about the same password.
    registering = await post_form(
        third_client, "/register", registration_form(password="kort", password_confirm="kort")
    )
    assert field_error(registering.text, "password") == "Passordet må ha minst 10 tegn."

    response = await change(client, PASSWORD, "kort")

    assert response.status_code == 422
    assert field_error(response.text, "new_password") == field_error(registering.text, "password")
    too_long = await change(client, PASSWORD, "x" * 129)
    assert field_error(too_long.text, "new_password") == "Passordet kan ha høyst 128 tegn."
    differ = await change(client, PASSWORD, NEW_PASSWORD, confirm=NEW_PASSWORD + "x")
    assert field_error(differ.text, "new_password_confirm") == "Passordene er ikke like."
    assert await password_hash(email) == before
    assert await signed_in(other_client)


async def test_success_ends_every_other_session_and_the_new_password_is_the_one(
    client, other_client, third_client
):
    email = await two_browsers(client, other_client)
    before = client.cookies.get("session")
    before_hash = await password_hash(email)

    response = await change(client, PASSWORD)

    assert response.status_code == 200
    assert CHANGED in response.text
    # This browser goes on, under a fresh session id; the old id is dead.
    fresh = session_cookie(response)
    assert fresh and fresh != before
    assert await signed_in(client)
    assert (await client.get("/portal/company")).status_code == 200
    # The other browser is signed out at its next request.
    stale = await other_client.get("/portal", follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/login")
    third_client.cookies.set("session", before)
    assert not await signed_in(third_client)
    third_client.cookies.clear()
    user = await User.objects().get(User.email == email)
    assert await BrowserSession.count().where(BrowserSession.user_id == user.id) == 1
    # The old password no longer signs in, the new one does.
    assert (await login(third_client, email)).status_code == 422
    assert (await login(third_client, email, NEW_PASSWORD)).status_code == 303
    assert user.password_hash.startswith("$argon2id$") and user.password_hash != before_hash


async def test_htmx_gets_the_form_region_with_the_answer(client):
    _, email = await make_company()
    await login(client, email)
    token = await csrf_token(client)
    response = await client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "_csrf_token": token,
        },
        headers={"HX-Request": "true", "HX-Target": "password-form"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="password-form"' in response.text
    assert CHANGED in response.text
    assert await signed_in(client)


@pytest.mark.parametrize("role", ["technician", "admin"])
async def test_staff_change_their_password_too(client, other_client, role):
    email = new_email(role)
    await create_staff(email=email, name="Stab", role=role, password=PASSWORD)
    assert (await login(client, email)).status_code == 303
    assert (await login(other_client, email)).status_code == 303
    assert 'href="/account/password"' in (await client.get("/staff")).text
    assert (await client.get("/account/password")).status_code == 200

    response = await change(client, PASSWORD)

    assert response.status_code == 200 and CHANGED in response.text
    assert (await client.get("/staff")).status_code == 200
    assert (await other_client.get("/staff", follow_redirects=False)).status_code == 303
    assert (await login(other_client, email)).status_code == 422
    assert (await login(other_client, email, NEW_PASSWORD)).status_code == 303


async def test_a_change_without_the_csrf_token_is_refused(client, other_client):
    email = await two_browsers(client, other_client)
    before = await password_hash(email)
    form = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_confirm": NEW_PASSWORD,
    }

    missing = await client.post("/account/password", data=form, follow_redirects=False)
    forged = await client.post(
        "/account/password", data={**form, "_csrf_token": "forged"}, follow_redirects=False
    )

    assert missing.status_code == 403 and forged.status_code == 403
    assert await password_hash(email) == before
    assert await signed_in(other_client)


async def test_the_page_and_its_messages_in_english(client):
    _, email = await make_company()
    await login(client, email)
    await client.get("/language/en")

    page = await client.get("/account/password")
    assert '<html lang="en">' in page.text and "Change password" in page.text
    wrong = await change(client, "feil-passord-99", "kort")
    assert "at least 10 characters" in wrong.text
    wrong = await change(client, "feil-passord-99")
    assert field_error(wrong.text, "current_password") != WRONG
    assert "wrong" in field_error(wrong.text, "current_password").lower()
    done = await change(client, PASSWORD)
    assert "Your password has been changed" in done.text


# The language each user chose


async def test_a_users_language_is_norwegian_until_they_choose():
    _, email = await make_company()
    user = await User.objects().get(User.email == email)
    assert user.language == "nb" and users.language_of(user) == "nb"


async def test_the_language_chosen_is_kept_on_the_user_and_used_on_another_browser(
    client, other_client
):
    form = await register(client)
    assert users.language_of(await User.objects().get(User.email == form["email"])) == "nb"

    await client.get("/language/en?next=/portal")

    user = await User.objects().get(User.email == form["email"])
    assert users.language_of(user) == "en"
    # Another browser, that never chose: the user's pages are in the user's language.
    assert '<html lang="nb">' in (await other_client.get("/login")).text
    signing_in = await login(other_client, form["email"])
    assert any(h.startswith("lang=en") for h in signing_in.headers.get_list("set-cookie"))
    page = await other_client.get("/portal")
    assert '<html lang="en">' in page.text and "Overview" in page.text
    # Back to Norwegian on that browser: the first one follows at its next page.
    await other_client.get("/language/nb")
    assert users.language_of(await User.objects().get(User.email == form["email"])) == "nb"
    assert '<html lang="nb">' in (await client.get("/portal")).text


async def test_a_signed_in_users_language_is_theirs_whatever_the_browser_had(client, other_client):
    _, email = await make_company()
    other_client.cookies.set("lang", "en")
    assert '<html lang="en">' in (await other_client.get("/")).text

    await login(other_client, email)

    assert '<html lang="nb">' in (await other_client.get("/portal")).text
    assert users.language_of(await User.objects().get(User.email == email)) == "nb"


async def test_registering_in_english_keeps_english(client, other_client):
    await client.get("/language/en")
    form = await register(client)
    assert users.language_of(await User.objects().get(User.email == form["email"])) == "en"
    await login(other_client, form["email"])
    assert '<html lang="en">' in (await other_client.get("/portal")).text


async def test_staff_keep_their_language_too(client, other_client):
    email = new_email("tekniker")
    await create_staff(email=email, name="Tor", role="technician", password=PASSWORD)
    await login(client, email)
    await client.get("/language/en")
    await login(other_client, email)
    assert '<html lang="en">' in (await other_client.get("/staff")).text


async def test_a_language_the_portal_has_not_is_no_choice(client):
    _, email = await make_company()
    await login(client, email)
    await client.get("/language/xx")
    assert users.language_of(await User.objects().get(User.email == email)) == "nb"
    # A value that reached the column some other way still means Norwegian.
    assert users.language_of(User(language="klingon")) == "nb"


async def test_a_link_on_another_site_does_not_change_the_language(client):
    _, email = await make_company()
    await login(client, email)
    for site in ("cross-site", "same-site"):
        await client.get("/language/en", headers={"Sec-Fetch-Site": site})
        assert users.language_of(await User.objects().get(User.email == email)) == "nb"
        assert '<html lang="nb">' in (await client.get("/portal")).text
    # From the portal's own menu.
    await client.get("/language/en", headers={"Sec-Fetch-Site": "same-origin"})
    assert users.language_of(await User.objects().get(User.email == email)) == "en"
