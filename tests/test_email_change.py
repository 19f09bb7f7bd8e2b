"""A new e-mail address (issue 11): asked for with the current password, confirmed by the link
mailed to the new address, the old address told; every other session ends with the change.

Mails go through the run's real SMTP server and the tests follow the links the mails hold."""

from __future__ import annotations

import datetime
import re

import pytest

from backend.services import clock, outbox, users
from backend.services.users import create_staff
from backend.tables import AccountLink, OutboxMail, User
from tests.support import PASSWORD, login, make_company, new_email, post_form

SENT = "Vi har sendt en lenke til"
CHANGED = "E-postadressen er endret til"
DEAD_LINK = "Lenken virker ikke lenger"
TAKEN = "Det finnes allerede en bruker med denne e-postadressen."
TAKEN_MEANWHILE = "En annen konto har tatt i bruk denne e-postadressen."
ANOTHER_USER = "Lenken gjelder en annen bruker enn den som er logget inn her."


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<small id="d-{field}" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else ""


async def ask(client, new: str, password: str = PASSWORD):
    return await post_form(
        client, "/account/email", {"new_email": new, "current_password": password}
    )


async def mails_to(settings, smtp, email: str, count: int = 1):
    await outbox.send_due(settings)
    return await smtp.wait_for(email, count)


def confirm_link(message, settings) -> str:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    pattern = re.escape(settings.base_url) + r"(/account/email/confirm/[A-Za-z0-9_-]+)"
    [in_text] = re.findall(pattern, text)
    assert re.findall(pattern, html) == [in_text]
    return in_text


async def asked_for(client, settings, smtp, new: str, count: int = 1) -> str:
    """Ask for `new` on the signed-in `client`: the link in the mail to `new`."""
    assert (await ask(client, new)).status_code == 200
    messages = await mails_to(settings, smtp, new, count)
    return confirm_link(messages[-1], settings)


async def confirm(client, link: str):
    return await post_form(client, link, {})


async def email_of(user_id: int) -> str:
    return (await User.objects().get(User.id == user_id)).email


async def signed_in(client, path: str = "/portal") -> bool:
    return (await client.get(path, follow_redirects=False)).status_code == 200


async def superuser(client) -> User:
    _, email = await make_company()
    assert (await login(client, email)).status_code == 303
    return await User.objects().get(User.email == email)


async def test_the_page_is_for_the_signed_in_and_linked_from_the_password_page(client):
    response = await client.get("/account/email", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account/email"
    user = await superuser(client)
    assert 'href="/account/email"' in (await client.get("/account/password")).text
    page = await client.get("/account/email")
    assert page.status_code == 200 and 'id="email-form"' in page.text and user.email in page.text


async def test_a_change_confirmed_by_the_link_moves_the_sign_in_to_the_new_address(
    client, other_client, app, settings, smtp
):
    user = await superuser(client)
    old = user.email
    assert (await login(other_client, old)).status_code == 303
    new = new_email("ny")

    asked = await ask(client, new.upper())  # kept lower-cased, as registration keeps it

    assert asked.status_code == 200 and SENT in asked.text and new in asked.text
    [confirmation] = await mails_to(settings, smtp, new)
    assert confirmation["Subject"] == "Bekreft ny e-postadresse"
    assert confirmation["To"] == new
    [notice] = await mails_to(settings, smtp, old)
    assert notice["Subject"] == "Noen ba om å endre e-postadressen din"
    notice_text = notice.get_body(("plain",)).get_content()
    assert "Kontakt supporten" in notice_text and new in notice_text
    assert "/account/email/confirm/" not in notice_text  # the link goes to the new address only
    # Nothing changes until the link is used.
    assert await email_of(user.id) == old
    assert await signed_in(other_client)
    link = confirm_link(confirmation, settings)
    page = await client.get(link)
    assert page.status_code == 200 and new in page.text and 'id="email-confirm-form"' in page.text
    assert await email_of(user.id) == old

    done = await confirm(client, link)

    assert done.status_code == 200 and CHANGED in done.text
    assert await email_of(user.id) == new
    # This browser goes on; the other one is signed out.
    assert await signed_in(client)
    assert not await signed_in(other_client)
    assert (await login(other_client, old)).status_code == 422
    assert (await login(other_client, new)).status_code == 303
    # The link is used up.
    assert (await client.get(link)).status_code == 410
    again = await confirm(client, link)
    assert again.status_code == 422 and DEAD_LINK in again.text


async def test_the_link_works_in_a_browser_signed_out(client, other_client, settings, smtp):
    user = await superuser(client)
    new = new_email("ny")
    link = await asked_for(client, settings, smtp, new)

    done = await confirm(other_client, link)

    assert (
        done.status_code == 200
        and CHANGED in done.text
        and "Logg inn med den nye adressen" in done.text
    )
    assert await email_of(user.id) == new
    assert not await signed_in(client) and not await signed_in(other_client)
    assert (await login(other_client, new)).status_code == 303


async def test_htmx_gets_the_confirmation_region_with_the_answer(client, settings, smtp):
    user = await superuser(client)
    new = new_email("ny")
    link = await asked_for(client, settings, smtp, new)
    htmx = {"HX-Request": "true", "HX-Target": "email-confirm"}

    done = await post_form(client, link, {}, headers=htmx)
    again = await post_form(client, link, {}, headers=htmx)

    assert done.status_code == 200 and CHANGED in done.text
    assert "<html" not in done.text and "<h1" not in done.text
    assert done.text.lstrip().startswith('<div id="email-confirm">')
    assert again.status_code == 422 and DEAD_LINK in again.text and "<h1" not in again.text
    assert await email_of(user.id) == new


async def test_a_wrong_password_sends_nothing(client, settings, smtp):
    user = await superuser(client)
    new = new_email("ny")

    response = await ask(client, new, "feil-passord-99")

    assert response.status_code == 422
    assert field_error(response.text, "current_password") == (
        "Passordet er feil. E-postadressen din er ikke endret."
    )
    assert f'value="{new}"' in response.text and 'value="feil-passord-99"' not in response.text
    await outbox.send_due(settings)
    assert smtp.messages_to(new) == [] and smtp.messages_to(user.email) == []
    assert not await AccountLink.exists().where(AccountLink.user == user.id)


async def test_wrong_passwords_count_against_the_sign_in_throttle(client, other_client):
    user = await superuser(client)
    for _ in range(5):
        assert (await ask(client, new_email("ny"), "feil-passord-99")).status_code == 422
    sixth = await ask(client, new_email("ny"))
    assert sixth.status_code == 429 and "For mange mislykkede innlogginger" in sixth.text
    assert (await login(other_client, user.email)).status_code == 429


async def test_an_address_another_account_has_is_refused(client, settings, smtp):
    user = await superuser(client)
    _, taken = await make_company()

    response = await ask(client, taken.upper())

    assert response.status_code == 422 and field_error(response.text, "new_email") == TAKEN
    same = await ask(client, user.email)
    assert field_error(same.text, "new_email") == "Dette er allerede e-postadressen din."
    bad = await ask(client, "ikke en adresse")
    assert field_error(bad.text, "new_email") == "Ugyldig e-postadresse."
    await outbox.send_due(settings)
    assert smtp.messages_to(user.email) == [] and smtp.messages_to(taken) == []


async def test_an_address_taken_before_the_link_is_used_is_refused_then(client, settings, smtp):
    user = await superuser(client)
    new = new_email("ny")
    link = await asked_for(client, settings, smtp, new)
    # Someone registers with the address meanwhile.
    await create_staff(email=new, name="Rask", role="technician", password=PASSWORD)

    response = await confirm(client, link)

    assert response.status_code == 422 and TAKEN_MEANWHILE in response.text
    assert await email_of(user.id) != new
    assert await signed_in(client)


async def test_another_users_link_does_nothing_for_them(client, other_client, settings, smtp):
    owner = await superuser(client)
    stranger = await superuser(other_client)
    new = new_email("ny")
    link = await asked_for(client, settings, smtp, new)

    refused = await confirm(other_client, link)

    assert refused.status_code == 422 and ANOTHER_USER in refused.text
    assert await email_of(stranger.id) == stranger.email
    assert await email_of(owner.id) == owner.email
    assert await signed_in(other_client) and await signed_in(client)
    # It is still its owner's link.
    assert (await confirm(client, link)).status_code == 200
    assert await email_of(owner.id) == new


async def test_a_reset_link_is_no_confirmation_link_nor_the_other_way(
    client, other_client, settings, smtp
):
    user = await superuser(client)
    new = new_email("ny")
    link = await asked_for(client, settings, smtp, new)
    token = link.rsplit("/", 1)[1]
    assert (await other_client.get(f"/password/reset/{token}")).status_code == 410
    refused = await post_form(
        other_client,
        f"/password/reset/{token}",
        {"new_password": "nytt-passord-12", "new_password_confirm": "nytt-passord-12"},
    )
    assert refused.status_code == 422
    assert (await login(other_client, user.email)).status_code == 303

    await post_form(client, "/password/forgot", {"email": user.email})
    [*_, reset] = await mails_to(settings, smtp, user.email, 2)  # the notice, then the reset
    reset_token = re.search(
        r"/password/reset/([A-Za-z0-9_-]+)", reset.get_body(("plain",)).get_content()
    )[1]
    assert (await client.get(f"/account/email/confirm/{reset_token}")).status_code == 410
    assert (await confirm(client, f"/account/email/confirm/{reset_token}")).status_code == 422
    assert await email_of(user.id) == user.email


async def test_a_link_lasts_a_day_and_a_newer_one_replaces_it(client, settings, smtp, monkeypatch):
    user = await superuser(client)
    first_address, second_address = new_email("ny"), new_email("ny")
    first = await asked_for(client, settings, smtp, first_address)
    second = await asked_for(client, settings, smtp, second_address)

    assert (await confirm(client, first)).status_code == 422
    asked_at = clock.now()
    monkeypatch.setattr(clock, "now", lambda: asked_at + datetime.timedelta(hours=24, minutes=1))
    page = await client.get(second)
    assert page.status_code == 410 and DEAD_LINK in page.text and "24 timer" in page.text
    assert (await confirm(client, second)).status_code == 422
    assert await email_of(user.id) == user.email


async def test_the_change_ends_the_reset_links_sent_to_the_old_address(client, settings, smtp):
    user = await superuser(client)
    await post_form(client, "/password/forgot", {"email": user.email})
    [reset] = await mails_to(settings, smtp, user.email)
    reset_path = re.search(
        r"/password/reset/[A-Za-z0-9_-]+", reset.get_body(("plain",)).get_content()
    )[0]
    new = new_email("ny")
    assert (await confirm(client, await asked_for(client, settings, smtp, new))).status_code == 200

    assert (await client.get(reset_path)).status_code == 410


@pytest.mark.parametrize("role", ["technician", "admin"])
async def test_staff_change_their_address_too(client, settings, smtp, role):
    email = new_email(role)
    await create_staff(email=email, name="Stab", role=role, password=PASSWORD)
    await login(client, email)
    new = new_email("ny-stab")
    assert (await confirm(client, await asked_for(client, settings, smtp, new))).status_code == 200
    assert await signed_in(client, "/staff")
    assert (await login(client, new)).status_code == 303


async def test_an_english_user_gets_both_mails_in_english(client, settings, smtp):
    user = await superuser(client)
    await users.set_language(user, "en")
    new = new_email("ny")

    asked = await ask(client, new)

    assert "We have sent a link to" in asked.text
    [confirmation] = await mails_to(settings, smtp, new)
    [notice] = await mails_to(settings, smtp, user.email)
    assert confirmation["Subject"] == "Confirm your new e-mail address"
    assert "The link works once and for 24 hours" in confirmation.get_body(("plain",)).get_content()
    assert notice["Subject"] == "Someone asked to change your e-mail address"
    assert "Contact support at once" in notice.get_body(("html",)).get_content()
    done = await confirm(client, confirm_link(confirmation, settings))
    assert "Your e-mail address has been changed to" in done.text


async def test_changing_the_password_cancels_a_change_someone_else_asked_for(
    client, settings, smtp
):
    """What the notice to the old address advises: the link sent to the new one stops working."""
    user = await superuser(client)
    new = new_email("ny")
    link = await asked_for(client, settings, smtp, new)
    form = {
        "current_password": PASSWORD,
        "new_password": "nytt-hemmelig-passord-2",
        "new_password_confirm": "nytt-hemmelig-passord-2",
    }
    assert (await post_form(client, "/account/password", form)).status_code == 200

    refused = await confirm(client, link)

    assert refused.status_code == 422 and DEAD_LINK in refused.text
    assert await email_of(user.id) == user.email


async def test_the_eleventh_request_in_an_hour_is_refused_and_mails_no_one(client):
    _, email = await make_company()
    assert (await login(client, email)).status_code == 303
    for n in range(10):
        assert (await ask(client, new_email(f"ny{n}"))).status_code == 200
    stranger = new_email("fremmed")
    refused = await ask(client, stranger)
    assert refused.status_code == 429
    assert not await OutboxMail.exists().where(OutboxMail.recipient == stranger)
