"""Typed forms (issue 9): every message of a form in one answer, text within its column, and
the bounds in the OpenAPI schema — on SQLite and PostgreSQL."""

from __future__ import annotations

from backend.services import catalog, tickets
from backend.services.users import create_staff
from backend.tables import TimeEntry, User
from tests.support import PASSWORD, login, make_company, new_email, post_form

HX = {"HX-Request": "true"}


async def sign_in_technician(client) -> User:
    email = new_email("tekniker")
    user = await create_staff(
        email=email, name="Tina Tekniker", role="technician", password=PASSWORD
    )
    assert (await login(client, email)).status_code == 303
    return user


async def test_openapi_shows_the_forms_bounds(client):
    paths = (await client.get("/schema/openapi.json")).json()["paths"]

    def form(path: str) -> dict:
        body = paths[path]["post"]["requestBody"]["content"]
        return body["application/x-www-form-urlencoded"]["schema"]["properties"]

    time = form("/staff/tickets/{ticket_id}/time")
    assert (time["minutes"]["minimum"], time["minutes"]["maximum"]) == (1, 600)
    assert set(time["channel"]["enum"]) == {"web", "phone", "mail", "remote"}
    ticket = form("/portal/tickets")
    assert ticket["subject"]["maxLength"] == 200
    adjustment = form("/staff/companies/{company_id}/adjustments")
    assert (adjustment["minutes"]["minimum"], adjustment["minutes"]["maximum"]) == (-12000, 12000)
    status = form("/staff/tickets/{ticket_id}/status")
    assert "waiting_for_customer" in status["status"]["enum"]


async def test_a_staff_ticket_shows_every_message_at_once(client):
    await sign_in_technician(client)

    response = await post_form(
        client,
        "/staff/tickets",
        {"company": "", "product": "", "subject": " ", "description": "Beholdt", "channel": "fax"},
        headers=HX,
    )

    assert response.status_code == 422
    for message in (
        "Velg et firma.",
        "Velg en kanal.",
        "Velg et produkt fra listen.",
        "Feltet må fylles ut.",
    ):
        assert message in response.text
    assert "Beholdt</textarea>" in response.text


async def test_a_void_reason_longer_than_its_column_is_refused_not_cut(client):
    await catalog.seed_demo_catalog()
    _, email = await make_company()
    superuser = await User.objects().get(User.email == email)
    ticket = await tickets.open_ticket(
        superuser, {"product": "inventor", "subject": "Låser seg", "description": "Ved lagring."}
    )
    technician = await sign_in_technician(client)
    entry = await tickets.log_time_from_form(
        technician, ticket, {"minutes": "15", "performed_on": "", "channel": "phone", "note": ""}
    )

    response = await post_form(
        client, f"/staff/time-entries/{entry.id}/void", {"reason": "x" * 501}, headers=HX
    )

    assert response.status_code == 422
    assert "Teksten er for lang." in response.text
    assert "x" * 501 in response.text  # the input is kept
    assert (await TimeEntry.objects().get(TimeEntry.id == entry.id)).voided_at is None
