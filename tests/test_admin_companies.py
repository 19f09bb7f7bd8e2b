"""The back office's companies (issue 12): admins search companies, see their members and
audit, edit their details, move the superuser role, deactivate and reactivate them; each
action with a reason, recorded once — on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from backend.services import catalog, inbound_mail
from backend.services.users import create_staff
from backend.tables import (
    AuditEntry,
    AuditKind,
    Company,
    InboundOutcome,
    InboxReason,
    OutboxMail,
    Role,
    Ticket,
    User,
)
from tests.support import (
    PASSWORD,
    login,
    make_company,
    make_ticket,
    new_email,
    new_org_number,
    post_form,
)
from tests.test_api import bearer, new_token
from tests.test_inbound_mail import _free_port, mail, received, send
from tests.test_members import add_member


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def staff(role: str = "admin") -> User:
    return await create_staff(
        email=new_email(role), name=f"Ansatt {role}", role=role, password=PASSWORD
    )


async def signed_in_admin(client) -> User:
    admin = await staff()
    assert (await login(client, admin.email)).status_code == 303
    return admin


async def entries(company_id: int) -> list[AuditEntry]:
    return await AuditEntry.objects().where(AuditEntry.company == company_id)


def details(company: Company, **changes: str) -> dict[str, str]:
    form = {
        "company_name": company.name,
        "org_number": company.org_number,
        "address": company.address,
        "postal_code": company.postal_code,
        "city": company.city,
        "reason": "Kunden ringte",
    }
    return {**form, **changes}


async def test_an_admin_finds_a_company_by_name_org_number_or_any_users_email(client):
    found_id, _ = await make_company("Søkbar Rørlegger AS")
    other_id, _ = await make_company("Helt Annet AS")
    company = await Company.objects().get(Company.id == found_id)
    member = await add_member(found_id)
    await signed_in_admin(client)

    def listed(text: str) -> set[int]:
        return {i for i in (found_id, other_id) if f'href="/staff/companies/{i}"' in text}

    for query in (
        "søkbar",
        "RØRLEGGER",
        company.org_number,
        f"{company.org_number[:3]} {company.org_number[3:6]}",
        member.email.upper(),
    ):
        response = await client.get("/staff/companies", params={"q": query})
        assert response.status_code == 200
        assert listed(response.text) == {found_id}, query
    nothing = await client.get("/staff/companies", params={"q": "finnes-ikke-123"})
    assert listed(nothing.text) == set()
    assert "Ingen firmaer passer til søket." in nothing.text
    assert listed((await client.get("/staff/companies")).text) == {found_id, other_id}


async def test_a_technician_is_refused_every_company_action(client):
    company_id, _ = await make_company()
    member = await add_member(company_id)
    technician = await staff("technician")
    await login(client, technician.email)
    company = await Company.objects().get(Company.id == company_id)
    url = f"/staff/companies/{company_id}"
    for path, form in (
        (f"{url}/details", details(company, company_name="Kapret AS")),
        (f"{url}/superuser", {"member": str(member.id), "reason": "x"}),
        (f"{url}/deactivate", {"reason": "x"}),
        (f"{url}/reactivate", {"reason": "x"}),
    ):
        assert (await post_form(client, path, form)).status_code == 403, path
    page = await client.get(url)
    assert page.status_code == 200 and "Deaktiver firmaet" not in page.text
    assert (await Company.objects().get(Company.id == company_id)).name == company.name
    assert await entries(company_id) == []


async def test_an_edit_needs_a_reason_and_is_recorded_with_before_and_after(client):
    company_id, _ = await make_company("Gammelt Navn AS")
    company = await Company.objects().get(Company.id == company_id)
    admin = await signed_in_admin(client)
    url = f"/staff/companies/{company_id}/details"

    no_reason = await post_form(client, url, details(company, company_name="Nytt", reason=""))
    assert no_reason.status_code == 422 and "Skriv hvorfor." in no_reason.text
    bad = await post_form(client, url, details(company, org_number="123456789"))
    assert bad.status_code == 422
    assert (await Company.objects().get(Company.id == company_id)).name == "Gammelt Navn AS"
    assert await entries(company_id) == []

    number = new_org_number()
    done = await post_form(
        client, url, details(company, company_name="Nytt Navn AS", org_number=number)
    )
    assert done.status_code == 303
    changed = await Company.objects().get(Company.id == company_id)
    assert (changed.name, changed.org_number) == ("Nytt Navn AS", number)
    [entry] = await entries(company_id)
    assert (entry.kind, entry.actor, entry.reason) == (
        AuditKind.company_edited,
        admin.id,
        "Kunden ringte",
    )
    assert json.loads(entry.before)["name"] == "Gammelt Navn AS"
    assert json.loads(entry.after)["org_number"] == number
    # The same again changes nothing and records nothing; another company's number is taken.
    await post_form(client, url, details(changed))
    other_id, _ = await make_company()
    other = await Company.objects().get(Company.id == other_id)
    taken = await post_form(client, url, details(changed, org_number=other.org_number))
    assert taken.status_code == 422
    assert len(await entries(company_id)) == 1
    page = await client.get(f"/staff/companies/{company_id}")
    assert "Kunden ringte" in page.text  # the company's audit on its page


async def test_moving_the_superuser_leaves_one_and_mails_both(client):
    company_id, superuser_email = await make_company()
    member = await add_member(company_id, "Nils Neste")
    admin = await signed_in_admin(client)
    url = f"/staff/companies/{company_id}/superuser"
    page = await client.get(f"/staff/companies/{company_id}")
    assert member.email in page.text  # members are listed

    refused = await post_form(client, url, {"member": str(member.id), "reason": ""})
    assert refused.status_code == 422
    stranger_company, _ = await make_company()
    stranger = await add_member(stranger_company)
    other = await post_form(client, url, {"member": str(stranger.id), "reason": "Ringte"})
    assert other.status_code == 422

    done = await post_form(client, url, {"member": str(member.id), "reason": "Ringte 12:00"})
    assert done.status_code == 303
    superusers = await User.objects().where(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )
    assert [u.id for u in superusers] == [member.id]
    mails = await OutboxMail.objects().where(
        OutboxMail.recipient.is_in([superuser_email, member.email])
    )
    assert sorted(m.template for m in mails) == ["handover_given", "handover_received"]
    [entry] = await entries(company_id)
    assert (entry.kind, entry.actor, entry.reason) == (
        AuditKind.superuser_moved,
        admin.id,
        "Ringte 12:00",
    )


async def test_a_deactivated_company_cannot_sign_in_keeps_its_data_and_comes_back(
    client, other_client
):
    company_id, email = await make_company()
    ticket_id = (await make_ticket(company_id)).id
    assert (await login(other_client, email)).status_code == 303
    secret = await new_token(other_client)
    assert (await other_client.get("/api/v1/account", headers=bearer(secret))).status_code == 200
    admin = await signed_in_admin(client)
    url = f"/staff/companies/{company_id}"

    assert (await post_form(client, f"{url}/deactivate", {"reason": ""})).status_code == 422
    assert (await post_form(client, f"{url}/deactivate", {"reason": "Sluttet"})).status_code == 303
    # Its session ended, its token stopped, a new sign-in is refused; the data stays.
    assert (await other_client.get("/portal", follow_redirects=False)).status_code != 200
    assert (await other_client.get("/api/v1/account", headers=bearer(secret))).status_code == 401
    assert (await login(other_client, email)).status_code != 303
    assert await Ticket.exists().where(Ticket.id == ticket_id)
    assert await User.exists().where(User.email == email)
    assert "Firmaet er deaktivert" in (await client.get(url)).text
    # A second click records nothing.
    await post_form(client, f"{url}/deactivate", {"reason": "Igjen"})

    assert (await post_form(client, f"{url}/reactivate", {"reason": "Tilbake"})).status_code == 303
    assert (await other_client.get("/api/v1/account", headers=bearer(secret))).status_code == 200
    assert (await login(other_client, email)).status_code == 303

    kinds = [(e.kind, e.actor, e.reason) for e in await entries(company_id)]
    assert kinds == [
        (AuditKind.company_deactivated, admin.id, "Sluttet"),
        (AuditKind.company_reactivated, admin.id, "Tilbake"),
    ]


async def test_a_deactivated_companys_mail_waits_in_the_staff_inbox(client):
    company_id, email = await make_company()
    await signed_in_admin(client)
    await post_form(client, f"/staff/companies/{company_id}/deactivate", {"reason": "Sluttet"})
    port = _free_port()
    server = await inbound_mail.start_receiver("127.0.0.1", port)
    try:
        message = mail(email)
        await send(port, message)
    finally:
        server.close()
        await server.wait_closed()
    row = await received(message)
    assert row.outcome == InboundOutcome.inbox and row.reason == InboxReason.unknown_sender
    assert not await Ticket.exists().where(Ticket.company == company_id)
