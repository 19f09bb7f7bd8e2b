"""A forgotten password (issue 11): "Glemt passord?" mails a reset link to an active user; the
link works once and for one hour, sets a new password and ends every session; the answer is the
same for every address; requests are throttled per address and per client.

Mails go through the run's real SMTP server (tests/smtp_server.py) and the tests follow the
links the mails hold."""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from backend.services import clock, outbox, password_reset, users
from backend.tables import AccountLink, User
from tests.support import PASSWORD, login, make_company, new_email, post_form

NEW_PASSWORD = "nytt-hemmelig-passord-2"
ASKED = "Hvis adressen hører til en konto hos oss, har vi sendt en lenke dit."
DEAD_LINK = "Lenken virker ikke lenger"
TOO_MANY = "For mange forespørsler om nytt passord. Vent en time før du prøver igjen."
RESET = "Passordet er byttet. Du er logget ut på alle nettlesere og enheter."


@pytest.fixture
async def third_client(app) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def forgot(client, email: str):
    return await post_form(client, "/password/forgot", {"email": email})


async def mails_to(settings, smtp, email: str, count: int = 1):
    await outbox.send_due(settings)
    return await smtp.wait_for(email, count)


def link_in(message, settings, path: str) -> str:
    """The path of the link to `path` in the mail, the same in its text and HTML parts."""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    pattern = re.escape(settings.base_url) + rf"({re.escape(path)}[A-Za-z0-9_-]+)"
    [in_text] = re.findall(pattern, text)
    assert re.findall(pattern, html) == [in_text]
    return in_text


async def reset_link(client, settings, smtp, email: str, count: int = 1) -> str:
    assert (await forgot(client, email)).status_code == 200
    messages = await mails_to(settings, smtp, email, count)
    return link_in(messages[-1], settings, "/password/reset/")


async def set_new(client, link: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    form = {
        "new_password": password,
        "new_password_confirm": password if confirm is None else confirm,
    }
    return await post_form(client, link, form)


async def signed_in(client) -> bool:
    return (await client.get("/portal", follow_redirects=False)).status_code == 200


async def password_hash(email: str) -> str:
    return (await User.objects().get(User.email == email)).password_hash


def without_tokens(html: str) -> str:
    # The CSRF token differs between any two responses.
    return re.sub(r'(name="_csrf_token" value|name="csrf-token" content)="[^"]*"', "", html)


async def test_the_sign_in_page_asks_whether_the_password_is_forgotten(client):
    page = await client.get("/login")
    assert 'href="/password/forgot"' in page.text and "Glemt passord?" in page.text
    form = await client.get("/password/forgot")
    assert form.status_code == 200 and 'id="forgot-form"' in form.text


async def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
    client, other_client, third_client, settings, smtp
):
    _, email = await make_company()
    assert (await login(client, email)).status_code == 303
    assert (await login(other_client, email)).status_code == 303

    asked = await forgot(third_client, email.upper())  # as typed: any case
    assert asked.status_code == 200 and ASKED in asked.text
    [message] = await mails_to(settings, smtp, email)
    assert message["Subject"] == "Velg nytt passord"
    assert "Lenken virker én gang og i én time." in message.get_body(("plain",)).get_content()
    link = link_in(message, settings, "/password/reset/")
    # Only its hash is kept.
    token = link.rsplit("/", 1)[1]
    row = await AccountLink.objects().get(
        AccountLink.token_hash == password_reset.account_links.token_hash(token)
    )
    assert row is not None and token not in str(row.to_dict())
    # Nothing changes until the form is sent.
    page = await third_client.get(link)
    assert page.status_code == 200 and "Nytt passord" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert await signed_in(client) and await signed_in(other_client)

    done = await set_new(third_client, link)

    assert done.status_code == 200 and RESET in done.text
    assert not await signed_in(client) and not await signed_in(other_client)
    assert (await login(client, email)).status_code == 422
    assert (await login(client, email, NEW_PASSWORD)).status_code == 303
    # The user is told, in case it was not them.
    [_, changed] = await mails_to(settings, smtp, email, 2)
    assert changed["Subject"] == "Passordet ditt er byttet"

    # The link has done its work.
    again = await third_client.get(link)
    assert again.status_code == 410 and DEAD_LINK in again.text and "Nytt passord" not in again.text
    before = await password_hash(email)
    second = await set_new(third_client, link, "et-tredje-passord-3")
    assert second.status_code == 422 and DEAD_LINK in second.text
    assert await password_hash(email) == before
    assert await signed_in(client)


async def test_the_same_link_sent_twice_at_once_sets_one_password(
    client, other_client, settings, smtp
):
    _, email = await make_company()
    link = await reset_link(client, settings, smtp, email)

    first, second = await asyncio.gather(
        set_new(client, link, "forste-nye-passord-1"),
        set_new(other_client, link, "andre-nye-passord-2"),
    )

    assert sorted((first.status_code, second.status_code)) == [200, 422]
    winner = "forste-nye-passord-1" if first.status_code == 200 else "andre-nye-passord-2"
    loser = "andre-nye-passord-2" if winner.startswith("forste") else "forste-nye-passord-1"
    assert (await login(client, email, loser)).status_code == 422
    assert (await login(client, email, winner)).status_code == 303


async def test_a_link_is_good_for_an_hour_and_then_refused(client, settings, smtp, monkeypatch):
    _, email = await make_company()
    link = await reset_link(client, settings, smtp, email)
    before = await password_hash(email)
    asked_at = clock.now()

    monkeypatch.setattr(clock, "now", lambda: asked_at + datetime.timedelta(minutes=61))
    page = await client.get(link)
    assert page.status_code == 410 and DEAD_LINK in page.text and "én time" in page.text
    refused = await set_new(client, link)
    assert refused.status_code == 422 and DEAD_LINK in refused.text
    assert await password_hash(email) == before

    # Just within the hour it still works (the same link: nothing used it up).
    monkeypatch.setattr(clock, "now", lambda: asked_at + datetime.timedelta(minutes=59))
    assert (await set_new(client, link)).status_code == 200
    assert (await login(client, email, NEW_PASSWORD)).status_code == 303


async def test_a_new_link_replaces_the_earlier_one(client, settings, smtp):
    _, email = await make_company()
    first = await reset_link(client, settings, smtp, email)
    second = await reset_link(client, settings, smtp, email, count=2)
    assert first != second

    assert (await client.get(first)).status_code == 410
    assert (await set_new(client, first)).status_code == 422
    assert (await set_new(client, second)).status_code == 200


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    client, other_client, settings, smtp
):
    _, email = await make_company()
    unknown = new_email("ukjent")
    links_before = await AccountLink.count()

    known_answer = await forgot(client, email)
    unknown_answer = await forgot(other_client, unknown)

    assert known_answer.status_code == unknown_answer.status_code == 200
    assert without_tokens(known_answer.text) == without_tokens(unknown_answer.text)
    assert dict(known_answer.headers).keys() == dict(unknown_answer.headers).keys()
    await mails_to(settings, smtp, email)
    assert smtp.messages_to(unknown) == []
    assert await AccountLink.count() == links_before + 1
    # The same for htmx.
    htmx = {"HX-Request": "true", "HX-Target": "forgot-form"}
    known = await post_form(client, "/password/forgot", {"email": email}, headers=htmx)
    unknown_htmx = await post_form(client, "/password/forgot", {"email": unknown}, headers=htmx)
    assert without_tokens(known.text) == without_tokens(unknown_htmx.text)
    assert "<html" not in known.text and ASKED in known.text


async def test_a_deactivated_user_gets_no_link(client, settings, smtp):
    _, email = await make_company()
    await User.update({User.active: False}).where(User.email == email)
    answer = await forgot(client, email)
    assert answer.status_code == 200 and ASKED in answer.text
    await outbox.send_due(settings)
    assert smtp.messages_to(email) == []
    assert not await password_reset.send_link(email)


async def test_a_link_stops_working_when_the_user_is_deactivated(client, settings, smtp):
    _, email = await make_company()
    link = await reset_link(client, settings, smtp, email)
    await User.update({User.active: False}).where(User.email == email)
    assert (await client.get(link)).status_code == 410
    assert (await set_new(client, link)).status_code == 422


async def test_a_password_change_ends_the_reset_links(client, settings, smtp):
    _, email = await make_company()
    link = await reset_link(client, settings, smtp, email)
    await login(client, email)
    form = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_confirm": NEW_PASSWORD,
    }
    assert (await post_form(client, "/account/password", form)).status_code == 200
    [_, changed] = await mails_to(settings, smtp, email, 2)
    assert changed["Subject"] == "Passordet ditt er byttet"
    assert (await set_new(client, link, "et-tredje-passord-3")).status_code == 422
    assert (await login(client, email, NEW_PASSWORD)).status_code == 303


async def test_the_new_password_follows_the_registration_rules(client, settings, smtp):
    _, email = await make_company()
    link = await reset_link(client, settings, smtp, email)
    before = await password_hash(email)

    short = await set_new(client, link, "kort")
    differ = await set_new(client, link, NEW_PASSWORD, NEW_PASSWORD + "x")

    assert short.status_code == 422 and "Passordet må ha minst 10 tegn." in short.text
    assert differ.status_code == 422 and "Passordene er ikke like." in differ.text
    assert await password_hash(email) == before
    # The link still works: nothing was set.
    assert (await set_new(client, link)).status_code == 200


async def test_a_malformed_address_is_told_so(client):
    response = await forgot(client, "ikke en adresse")
    assert response.status_code == 422 and "Ugyldig e-postadresse." in response.text
    assert 'value="ikke en adresse"' in response.text


async def test_requests_for_one_address_are_throttled(client, other_client, settings, smtp):
    _, email = await make_company()
    for _ in range(password_reset.FORGOT_PER_ADDRESS):
        assert (await forgot(client, email)).status_code == 200
    await mails_to(settings, smtp, email, password_reset.FORGOT_PER_ADDRESS)

    refused = await forgot(other_client, email)

    assert refused.status_code == 429 and TOO_MANY in refused.text and ASKED not in refused.text
    await outbox.send_due(settings)
    await asyncio.sleep(0.3)
    assert len(smtp.messages_to(email)) == password_reset.FORGOT_PER_ADDRESS
    # Another address from the same client is not held up.
    _, other = await make_company()
    assert (await forgot(client, other)).status_code == 200
    await mails_to(settings, smtp, other)


async def test_requests_from_one_client_are_throttled(client, settings, smtp):
    for _ in range(password_reset.FORGOT_PER_CLIENT):
        assert (await forgot(client, new_email("ukjent"))).status_code == 200
    _, email = await make_company()

    refused = await forgot(client, email)

    assert refused.status_code == 429 and TOO_MANY in refused.text
    await outbox.send_due(settings)
    await asyncio.sleep(0.3)
    assert smtp.messages_to(email) == []
    assert not await AccountLink.exists().where(
        AccountLink.user == (await User.objects().get(User.email == email)).id
    )


async def test_an_english_user_gets_the_mail_and_pages_in_english(client, settings, smtp):
    _, email = await make_company()
    await users.set_language(await User.objects().get(User.email == email), "en")
    link = await reset_link(client, settings, smtp, email)
    [message] = smtp.messages_to(email)
    assert message["Subject"] == "Choose a new password"
    assert "works once and for one hour" in message.get_body(("plain",)).get_content()

    await client.get("/language/en")
    page = await client.get(link)
    assert '<html lang="en">' in page.text and "New password" in page.text
    assert "Your password has been changed" in (await set_new(client, link)).text
    [_, changed] = await mails_to(settings, smtp, email, 2)
    assert changed["Subject"] == "Your password has been changed"
    asked = await forgot(client, new_email("ukjent"))
    assert "If the address belongs to an account" in asked.text
