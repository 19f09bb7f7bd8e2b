"""Members and the superuser role (issue 11, SPEC §1): invitations by mail (single use, 7 days,
resent, withdrawn), removing a member, the hand-over confirmed with a password, exactly one
superuser per company in the database, and a member refused every superuser action."""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import Any

import pytest
from litestar.routes import HTTPRoute
from piccolo.table import Table

from backend.db import is_unique_violation
from backend.services import api_tokens, clock, members, outbox, policy, users
from backend.services.errors import NotAllowed, NotFound, ValidationFailed
from backend.tables import (
    BrowserSession,
    Invitation,
    OutboxMail,
    Role,
    SignInCounter,
    Ticket,
    TicketMessage,
    User,
)
from tests import test_policy
from tests.support import PASSWORD, login, make_company, new_email, post_form, register

MEMBERS = "/portal/company/members"
NEW_PASSWORD = "medlemmets-passord-1"
LINK = re.compile(r"https?://[^\s/]+/invitation/([A-Za-z0-9_-]+)")


async def superuser_of(company_id: int) -> User:
    return await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )


async def signed_in_superuser(client) -> User:
    company_id, email = await make_company("Medlemsfirma AS")
    assert (await login(client, email)).status_code == 303
    return await superuser_of(company_id)


async def add_member(company_id: int, name: str = "Mona Medlem") -> User:
    member = User(
        email=new_email("medlem"),
        name=name,
        phone="+4722334466",
        role=Role.member.value,
        company=company_id,
        password_hash=users.hash_password(PASSWORD),
    )
    await member.save()
    return member


async def invite(client, email: str) -> Any:
    return await post_form(client, f"{MEMBERS}/invitations", {"email": email})


async def mailed_token(settings, smtp, email: str, count: int = 1) -> str:
    """Send what is due; the link's token in the `count`-th mail `email` got."""
    await outbox.send_due(settings)
    message = (await smtp.wait_for(email, count))[count - 1]
    match = LINK.search(message.get_body(("plain",)).get_content())
    assert match, "no invitation link in the mail"
    return match.group(1)


def accept_form(**overrides: str) -> dict[str, str]:
    form = {
        "name": "Ivar Invitert",
        "phone": "+47 922 33 444",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
    }
    form.update(overrides)
    return form


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<small id="d-{field}[^"]*" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else ""


# --- the invitation -------------------------------------------------------------------------


async def test_an_invited_colleague_follows_the_mailed_link_and_becomes_a_signed_in_member(
    client, other_client, settings, smtp
):
    superuser = await signed_in_superuser(client)
    email = new_email("kollega")
    response = await invite(client, email)
    assert response.status_code == 200
    assert f"Invitasjonen er sendt til {email}." in response.text
    assert email in (await client.get(MEMBERS)).text  # waiting, in the list

    await outbox.send_due(settings)
    [message] = await smtp.wait_for(email)
    assert (
        message["Subject"] == "Sara Superbruker inviterer deg til Medlemsfirma AS i supportportalen"
    )
    text = message.get_body(("plain",)).get_content()
    assert superuser.email in text and settings.seller.name in text
    token = LINK.search(text).group(1)
    assert token in message.get_body(("html",)).get_content()
    # Only its hash is kept.
    [row] = await Invitation.objects().where(Invitation.email == email)
    assert row.token_hash == members.hash_token(token) and token not in row.token_hash

    page = await other_client.get(f"/invitation/{token}")
    assert page.status_code == 200
    assert "Bli med i Medlemsfirma AS" in page.text and "Sara Superbruker" in page.text
    assert page.headers["cache-control"] == "no-store"  # its link is in the address and form
    accepted = await post_form(other_client, f"/invitation/{token}", accept_form())
    assert accepted.status_code == 303 and accepted.headers["location"] == "/portal"

    member = await User.objects().get(User.email == email)
    assert (member.role, member.company, member.active) == ("member", superuser.company, True)
    assert member.name == "Ivar Invitert" and member.phone == "+4792233444"
    statement = await other_client.get("/portal/usage")
    assert statement.status_code == 200  # signed in, and sees the statement
    listed = (await client.get(MEMBERS)).text
    assert "Ivar Invitert" in listed and "Ingen invitasjoner venter." in listed
    # The new member signs in with the password they chose.
    await other_client.post("/logout", headers={"x-csrftoken": other_client.cookies["csrftoken"]})
    assert (await login(other_client, email, NEW_PASSWORD)).status_code == 303


async def test_the_link_is_single_use(client, other_client, settings, smtp):
    await signed_in_superuser(client)
    email = new_email("engang")
    await invite(client, email)
    token = await mailed_token(settings, smtp, email)
    assert (await post_form(other_client, f"/invitation/{token}", accept_form())).status_code == 303
    await other_client.post("/logout", headers={"x-csrftoken": other_client.cookies["csrftoken"]})

    assert (await other_client.get(f"/invitation/{token}")).status_code == 404
    again = await post_form(other_client, f"/invitation/{token}", accept_form(name="Noen Andre"))
    assert again.status_code == 422
    assert "Invitasjonen er ikke gyldig" in again.text
    assert await User.count().where(User.email == email) == 1
    assert (await User.objects().get(User.email == email)).name == "Ivar Invitert"


async def test_two_acceptances_at_once_make_one_member(client, other_client, settings, smtp):
    superuser = await signed_in_superuser(client)
    email = new_email("samtidig")
    await invite(client, email)
    token = await mailed_token(settings, smtp, email)
    results = await asyncio.gather(
        members.accept(token, accept_form(name="En")),
        members.accept(token, accept_form(name="To")),
        return_exceptions=True,
    )
    assert sum(isinstance(result, User) for result in results) == 1
    [refused] = [r for r in results if not isinstance(r, User)]
    assert isinstance(refused, ValidationFailed)
    assert await User.count().where(User.company == superuser.company) == 2


async def test_the_link_expires_after_seven_days(client, other_client, settings, smtp, monkeypatch):
    await signed_in_superuser(client)
    email = new_email("sent")
    await invite(client, email)
    token = await mailed_token(settings, smtp, email)
    sent = clock.now()

    monkeypatch.setattr(clock, "now", lambda: sent + datetime.timedelta(days=6, hours=23))
    assert (await other_client.get(f"/invitation/{token}")).status_code == 200
    monkeypatch.setattr(clock, "now", lambda: sent + datetime.timedelta(days=7, seconds=1))
    assert (await other_client.get(f"/invitation/{token}")).status_code == 404
    late = await post_form(other_client, f"/invitation/{token}", accept_form())
    assert late.status_code == 422 and "ikke gyldig lenger" in late.text
    assert not await User.exists().where(User.email == email)
    # The superuser sees it expired, and can send it again.
    assert "Utløpt" in (await client.get(MEMBERS)).text


async def test_resending_makes_a_new_link_and_the_old_one_stops(
    client, other_client, settings, smtp
):
    await signed_in_superuser(client)
    email = new_email("igjen")
    await invite(client, email)
    old = await mailed_token(settings, smtp, email)
    [row] = await Invitation.objects().where(Invitation.email == email)

    response = await post_form(client, f"{MEMBERS}/invitations/{row.id}/resend", {})
    assert response.status_code == 200 and "sendt på nytt" in response.text
    new = await mailed_token(settings, smtp, email, count=2)
    assert new != old
    assert (await other_client.get(f"/invitation/{old}")).status_code == 404
    refused = await post_form(other_client, f"/invitation/{old}", accept_form())
    assert refused.status_code == 422
    assert (await post_form(other_client, f"/invitation/{new}", accept_form())).status_code == 303


async def test_a_withdrawn_invitation_no_longer_works(client, other_client, settings, smtp):
    await signed_in_superuser(client)
    email = new_email("trukket")
    await invite(client, email)
    token = await mailed_token(settings, smtp, email)
    [row] = await Invitation.objects().where(Invitation.email == email)

    response = await post_form(client, f"{MEMBERS}/invitations/{row.id}/withdraw", {})
    assert response.status_code == 200 and "Invitasjonen er trukket tilbake." in response.text
    assert email not in response.text
    assert (await other_client.get(f"/invitation/{token}")).status_code == 404
    assert (await post_form(other_client, f"/invitation/{token}", accept_form())).status_code == 422
    assert not await User.exists().where(User.email == email)
    # Withdrawn once is withdrawn; it cannot be resent either.
    assert (
        await post_form(client, f"{MEMBERS}/invitations/{row.id}/withdraw", {})
    ).status_code == 404
    assert (
        await post_form(client, f"{MEMBERS}/invitations/{row.id}/resend", {})
    ).status_code == 404


async def test_an_address_with_an_account_is_told_so_and_nothing_is_sent(client, other_client):
    superuser = await signed_in_superuser(client)
    _, taken = await make_company("Annet AS")
    response = await invite(client, taken.upper())
    assert response.status_code == 422
    assert "Det finnes allerede en bruker med denne e-postadressen." in field_error(
        response.text, "email"
    )
    assert not await Invitation.exists().where(Invitation.company == superuser.company)
    assert not await OutboxMail.exists().where(OutboxMail.recipient == taken)


async def test_the_same_address_invited_twice_is_told_to_resend(client):
    superuser = await signed_in_superuser(client)
    email = new_email("dobbel")
    assert (await invite(client, email)).status_code == 200
    again = await invite(client, email)
    assert again.status_code == 422
    assert "allerede invitert" in field_error(again.text, "email")
    assert await Invitation.count().where(Invitation.company == superuser.company) == 1
    assert await OutboxMail.count().where(OutboxMail.recipient == email) == 1


async def test_an_invitee_who_got_an_account_meanwhile_is_told_so_not_duplicated(
    client, other_client, settings, smtp
):
    await signed_in_superuser(client)
    email = new_email("imellom")
    await invite(client, email)
    token = await mailed_token(settings, smtp, email)
    await register(other_client, email=email)  # registers a company of their own meanwhile
    await other_client.post("/logout", headers={"x-csrftoken": other_client.cookies["csrftoken"]})

    page = await other_client.get(f"/invitation/{token}")
    assert "Det finnes allerede en bruker med denne e-postadressen." in page.text
    refused = await post_form(other_client, f"/invitation/{token}", accept_form())
    assert refused.status_code == 422
    assert await User.count().where(User.email == email) == 1
    assert (await User.objects().get(User.email == email)).role == "superuser"


async def test_the_invitees_form_has_registrations_rules_and_keeps_the_input(
    client, other_client, settings, smtp
):
    await signed_in_superuser(client)
    email = new_email("skjema")
    await invite(client, email)
    token = await mailed_token(settings, smtp, email)
    response = await post_form(
        other_client,
        f"/invitation/{token}",
        accept_form(phone="12", password="kort", password_confirm="annet"),
    )
    assert response.status_code == 422
    assert field_error(response.text, "phone")
    assert field_error(response.text, "password") == "Passordet må ha minst 10 tegn."
    assert field_error(response.text, "password_confirm") == "Passordene er ikke like."
    assert 'value="Ivar Invitert"' in response.text and "kort" not in response.text
    assert not await User.exists().where(User.email == email)
    assert (await other_client.get(f"/invitation/{token}")).status_code == 200  # still usable


async def test_the_invitation_is_in_the_inviters_language(client, settings, smtp):
    superuser = await signed_in_superuser(client)
    await users.set_language(superuser, "en")
    email = new_email("english")
    await members.invite(superuser, {"email": email})
    await outbox.send_due(settings)
    [message] = await smtp.wait_for(email)
    assert (
        message["Subject"]
        == "Sara Superbruker invites you to Medlemsfirma AS in the support portal"
    )
    assert "The link can be used once" in message.get_body(("plain",)).get_content()


# --- another company's ids --------------------------------------------------------------------


async def test_another_companys_invitations_and_members_are_not_found(client, other_client):
    mine = await signed_in_superuser(client)
    theirs_id, _ = await make_company("Naboen AS")
    their_superuser = await superuser_of(theirs_id)
    their_member = await add_member(theirs_id)
    their_invitation = await members.invite(their_superuser, {"email": new_email("nabo")})
    before = await snapshot()

    for path, data in (
        (f"{MEMBERS}/invitations/{their_invitation.id}/resend", {}),
        (f"{MEMBERS}/invitations/{their_invitation.id}/withdraw", {}),
        (f"{MEMBERS}/{their_member.id}/remove", {}),
        (f"{MEMBERS}/{their_member.id}/superuser", {"password": PASSWORD}),
        (f"{MEMBERS}/{their_superuser.id}/superuser", {"password": PASSWORD}),
        (f"{MEMBERS}/{mine.id}/remove", {}),  # not a member: the superuser is not removed
    ):
        assert (await post_form(client, path, data)).status_code == 404, path
    assert await snapshot() == before
    assert their_member.name not in (await client.get(MEMBERS)).text


# --- removing a member ------------------------------------------------------------------------


async def test_a_removed_member_is_signed_out_and_cannot_sign_in_and_their_tickets_remain(
    client, other_client
):
    superuser = await signed_in_superuser(client)
    member = await add_member(superuser.company, "Frida Fjernet")
    assert (await login(other_client, member.email)).status_code == 303
    assert (await other_client.get("/portal", follow_redirects=False)).status_code == 200
    ticket = Ticket(
        company=superuser.company,
        product_code="inventor",
        subject="Skrevet av medlemmet",
        description="…",
        channel="mail",
        opened_by=member.id,
    )
    ticket.last_activity_at = ticket.created_at
    await ticket.save()
    await TicketMessage(ticket=ticket.id, author=member.id, body="Hilsen Frida").save()

    response = await post_form(client, f"{MEMBERS}/{member.id}/remove", {})
    assert response.status_code == 200 and "Medlemmet er fjernet" in response.text
    assert "Frida Fjernet" not in response.text

    assert not await BrowserSession.exists().where(BrowserSession.user_id == member.id)
    assert (await other_client.get("/portal", follow_redirects=False)).status_code in (302, 303)
    assert (await login(other_client, member.email)).status_code != 303
    kept = await User.objects().get(User.id == member.id)
    assert kept is not None and not kept.active
    page = await client.get(f"/portal/tickets/{ticket.id}")
    assert page.status_code == 200 and "Frida Fjernet" in page.text
    # Removed twice is removed once.
    assert (await post_form(client, f"{MEMBERS}/{member.id}/remove", {})).status_code == 404


async def test_api_tokens_made_by_a_removed_former_superuser_stop_working(client, other_client):
    first = await signed_in_superuser(client)
    _, secret = await api_tokens.create_token(first, {"name": "Rapportserver"})
    bearer = {"Authorization": f"Bearer {secret}"}
    second = await add_member(first.company, "Neste Superbruker")
    await members.hand_over(first, second.id, {"password": PASSWORD}, ip="192.0.2.1")
    # The token still speaks for the company while its maker is a member.
    assert (await other_client.get("/api/v1/account", headers=bearer)).status_code == 200

    assert (await login(other_client, second.email)).status_code == 303
    removed = await post_form(other_client, f"{MEMBERS}/{first.id}/remove", {})
    assert removed.status_code == 200
    other_client.cookies.clear()
    assert (await other_client.get("/api/v1/account", headers=bearer)).status_code == 401


# --- the hand-over ----------------------------------------------------------------------------


async def test_the_hand_over_swaps_the_roles_and_mails_both_in_their_languages(
    client, other_client, settings, smtp
):
    superuser = await signed_in_superuser(client)
    member = await add_member(superuser.company, "Nils Neste")
    await users.set_language(member, "en")
    response = await post_form(client, f"{MEMBERS}/{member.id}/superuser", {"password": PASSWORD})
    assert response.status_code == 200
    assert "Nils Neste er nå superbruker. Du er medlem." in response.text
    assert "Send invitasjon" not in response.text  # the old superuser manages no more

    assert (await User.objects().get(User.id == superuser.id)).role == "member"
    assert (await User.objects().get(User.id == member.id)).role == "superuser"
    await outbox.send_due(settings)
    [given] = await smtp.wait_for(superuser.email)
    [received] = await smtp.wait_for(member.email)
    assert given["Subject"] == "Du har gitt superbrukerrollen i Medlemsfirma AS til Nils Neste"
    assert received["Subject"] == "You are now the superuser of Medlemsfirma AS"
    assert "Sara Superbruker" in received.get_body(("plain",)).get_content()
    # The old superuser is refused what only a superuser does.
    again = await post_form(client, f"{MEMBERS}/{member.id}/superuser", {"password": PASSWORD})
    assert again.status_code == 403
    assert (
        await post_form(client, f"{MEMBERS}/invitations", {"email": new_email()})
    ).status_code == 403
    # The new one manages members.
    assert (await login(other_client, member.email)).status_code == 303
    assert f'action="{MEMBERS}/invitations"' in (await other_client.get(MEMBERS)).text


async def test_a_wrong_password_hands_nothing_over_and_sends_nothing(client, smtp, settings):
    superuser = await signed_in_superuser(client)
    member = await add_member(superuser.company)
    before = await snapshot()
    response = await post_form(
        client, f"{MEMBERS}/{member.id}/superuser", {"password": "feil-passord-123"}
    )
    assert response.status_code == 422
    assert field_error(response.text, "password") == members.WRONG_PASSWORD
    assert "open" in re.search(
        rf'<form id="handover-{member.id}".*?</details>', response.text, re.S
    ).group(0)
    empty = await post_form(client, f"{MEMBERS}/{member.id}/superuser", {"password": ""})
    assert empty.status_code == 422 and field_error(empty.text, "password")
    assert await snapshot() == before
    assert not await OutboxMail.exists().where(
        OutboxMail.recipient.is_in([superuser.email, member.email])
    )
    await outbox.send_due(settings)
    await asyncio.sleep(0.2)
    assert smtp.messages_to(member.email) == [] and smtp.messages_to(superuser.email) == []


async def test_only_an_active_member_of_the_company_can_be_handed_the_role(client):
    superuser = await signed_in_superuser(client)
    removed = await add_member(superuser.company, "Borte Vekk")
    await members.remove_member(superuser, removed.id)
    with pytest.raises(NotFound):
        await members.hand_over(superuser, removed.id, {"password": PASSWORD}, ip="192.0.2.2")
    assert (await superuser_of(superuser.company)).id == superuser.id


async def test_two_hand_overs_at_once_leave_exactly_one_superuser(client, settings):
    company_id, email = await make_company("Kappløp AS")
    first = await add_member(company_id, "Første")
    second = await add_member(company_id, "Andre")
    # Two requests, each with the superuser as its own session read them.
    as_read = [await User.objects().get(User.email == email) for _ in range(2)]
    results = await asyncio.gather(
        members.hand_over(as_read[0], first.id, {"password": PASSWORD}, ip="192.0.2.3"),
        members.hand_over(as_read[1], second.id, {"password": PASSWORD}, ip="192.0.2.3"),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, User)]
    losers = [r for r in results if not isinstance(r, User)]
    assert len(winners) == 1 and len(losers) == 1
    assert isinstance(losers[0], ValidationFailed)
    assert losers[0].errors == {"form": members.ALREADY_HANDED_OVER}
    superusers = await User.objects().where(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )
    assert [u.id for u in superusers] == [winners[0].id]
    assert (await User.objects().get(User.email == email)).role == "member"
    # Mail for the one hand-over that happened: two, not four.
    queued = await OutboxMail.objects().where(OutboxMail.key.like("handover:%"))
    mine = [m for m in queued if m.recipient in {email, first.email, second.email}]
    assert sorted(m.recipient for m in mine) == sorted([email, winners[0].email])


async def test_two_hand_overs_at_once_over_http_answer_no_500(client, other_client):
    company_id, email = await make_company("Kappløp to AS")
    first = await add_member(company_id, "Første")
    second = await add_member(company_id, "Andre")
    assert (await login(client, email)).status_code == 303
    assert (await login(other_client, email)).status_code == 303
    responses = await asyncio.gather(
        post_form(client, f"{MEMBERS}/{first.id}/superuser", {"password": PASSWORD}),
        post_form(other_client, f"{MEMBERS}/{second.id}/superuser", {"password": PASSWORD}),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[1] in (403, 422), statuses
    loser = max(responses, key=lambda r: r.status_code)
    if loser.status_code == 422:
        assert "allerede gitt videre" in loser.text
    assert (
        await User.count().where((User.company == company_id) & (User.role == Role.superuser.value))
        == 1
    )


async def test_the_database_refuses_a_second_superuser():
    company_id, _ = await make_company("Indeks AS")
    second = User(
        email=new_email("nummer2"),
        name="Nummer To",
        role=Role.superuser.value,
        company=company_id,
        password_hash="x",
    )
    with pytest.raises(Exception) as refused:
        await second.save()
    assert is_unique_violation(refused.value)
    member = await add_member(company_id)
    with pytest.raises(Exception) as promoted:
        await User.update({User.role: Role.superuser.value}).where(User.id == member.id)
    assert is_unique_violation(promoted.value)
    assert (
        await User.count().where((User.company == company_id) & (User.role == Role.superuser.value))
        == 1
    )


# --- a member is refused every superuser action ----------------------------------------------


def superuser_only(action: str) -> bool:
    roles = policy.ACTIONS[action]
    return policy.SUPERUSER in roles and policy.MEMBER not in roles


def guarded_actions(handler: Any) -> set[str]:
    """The policy actions a route's guards (its own and its controller's) ask for."""
    return {
        guard.__name__.removeprefix("allowed_")
        for guard in handler.resolve_guards()
        if guard.__name__.startswith("allowed_")
    }


def superuser_only_routes(app: Any) -> list[tuple[str, str, str]]:
    """(name, method, path) of every route only a superuser may use: from the guards in the
    app's route table, and from test_policy's table for the routes whose service asks the
    policy about the object (a reply on a ticket, paying an order)."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.name is None:
                continue
            actions = guarded_actions(handler)
            rule = test_policy.ROUTES.get(handler.name)
            if rule is not None:
                assert set(rule.guards) == actions, f"{handler.name}: test_policy's table is stale"
                if rule.action:
                    actions.add(rule.action)
            if any(superuser_only(action) for action in actions):
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    found.append((handler.name, method, route.path))
    return found


# What each form would hold if a member filled it in: the refusal must not depend on bad input.
FORMS = {
    "company_update": {
        "address": "Ny gate 2",
        "postal_code": "0151",
        "city": "Oslo",
        "name": "Mona Medlem",
        "phone": "+4722334455",
    },
    "api_token_create": {"name": "Medlemmets nøkkel"},
    "order_create": {"kind": "topup", "hours": "5", "products": "inventor"},
    "ticket_create": {"product": "inventor", "subject": "Fra medlem", "description": "Hei"},
    "ticket_reply": {"body": "Svar fra medlemmet"},
    "invitation_create": {"email": "venn@example.no"},
    "superuser_handover": {"password": PASSWORD},
}
# What the superuser's pages offer: buttons, links and forms a member must not see.
OFFERED_ONLY_TO_THE_SUPERUSER = (
    "Fyll på tidskontoen",
    "Forny Fri support",
    'action="/portal/orders"',
    'href="/portal/tickets/new"',
    "/invitations",
    "/superuser",
    "/remove",
    'href="/portal/company/api"',
    'action="/portal/company"',
)
# Neither sessions nor sign-in counters are what a refused action could have changed.
NOT_COMPARED = {BrowserSession, SignInCounter}


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the portal."""
    from backend import tables

    found = {}
    for table in vars(tables).values():
        if isinstance(table, type) and issubclass(table, Table) and table not in NOT_COMPARED:
            rows = await table.select().order_by(table._meta.primary_key)
            found[table._meta.tablename] = rows
    # Which mails exist, not how far their sending is: a served portal's sender may be sending.
    found["outbox_mail"] = await tables.OutboxMail.select(
        tables.OutboxMail.id, tables.OutboxMail.key, tables.OutboxMail.recipient
    ).order_by(tables.OutboxMail.id)
    return found


def test_the_walk_finds_every_superuser_only_action(app):
    names = {name for name, _, _ in superuser_only_routes(app)}
    for expected in (
        "company_update",
        "company_api",
        "api_token_create",
        "api_token_revoke",
        "order_create",
        "order_pay",
        "order_cancel",
        "ticket_new",
        "ticket_create",
        "ticket_reply",
        "ticket_resolve",
        "invitation_create",
        "invitation_resend",
        "invitation_withdraw",
        "member_remove",
        "superuser_handover",
    ):
        assert expected in names
    assert "usage" not in names and "members" not in names


async def test_a_member_is_refused_every_superuser_action_and_nothing_changes(app, settings):
    clients = await test_policy.walkers(settings)
    try:
        superuser, _ = clients["superuser"]
        member, client = clients["member"]
        objects = await test_policy.own_objects(superuser, clients["technician"][0])
        objects["written_mail"] = "none.eml"
        before = await snapshot()
        token = client.cookies.get("csrftoken", "")
        refused = []
        for name, method, path in superuser_only_routes(app):
            url = test_policy.fill(path, objects)
            if method == "GET":
                response = await client.get(url, follow_redirects=False)
            else:
                response = await client.request(
                    method,
                    url,
                    data={**FORMS.get(name, {}), "_csrf_token": token},
                    follow_redirects=False,
                )
            if response.status_code != 403:
                refused.append(f"{method} {url}: {response.status_code}")
        assert not refused, "a member got through:\n" + "\n".join(refused)
        assert await snapshot() == before
        # The member's pages offer none of it.
        for page in ("/portal", "/portal/usage", "/portal/tickets", MEMBERS, "/portal/company"):
            html = (await client.get(page)).text
            for offered in OFFERED_ONLY_TO_THE_SUPERUSER:
                assert offered not in html, (page, offered)
        ticket = (await client.get(f"/portal/tickets/{objects['ticket'].id}")).text
        assert "/messages" not in ticket and "/resolve" not in ticket
        assert member.role == "member"
    finally:
        for _, walker in clients.values():
            await walker.__aexit__(None, None, None)


async def test_the_service_refuses_a_member_too():
    company_id, _ = await make_company("Tjeneste AS")
    member = await add_member(company_id)
    other = await add_member(company_id, "Kollega")
    with pytest.raises(NotAllowed):
        await members.invite(member, {"email": new_email()})
    with pytest.raises(NotAllowed):
        await members.remove_member(member, other.id)
    with pytest.raises(NotAllowed):
        await members.hand_over(member, other.id, {"password": PASSWORD}, ip="192.0.2.9")
