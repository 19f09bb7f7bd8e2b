"""The customer API (issue 10): tokens the superuser makes at /portal/company/api, and
/api/v1 answering JSON to a bearer token or a signed-in session — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import hashlib
import re

import pytest

from backend.services import api_tokens, catalog, charges, clock, ledger, statement, tickets
from backend.services.users import create_staff, hash_password
from backend.tables import ApiToken, Role, User
from tests.support import PASSWORD, login, make_company, make_ticket, new_email, post_form

ROUTES = ("/api/v1/account", "/api/v1/tickets", "/api/v1/tickets/SUP-000001", "/api/v1/usage")
SECRET = re.compile(r'id="new-secret" type="text" readonly value="(spt_[A-Za-z0-9_-]+)"')


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def signed_in_superuser(client) -> User:
    _, email = await make_company("API-firma AS")
    assert (await login(client, email)).status_code == 303
    return await User.objects().get(User.email == email)


async def new_token(client, name: str = "Rapportserver") -> str:
    """A token made through the page, as the superuser does it: its secret, shown once."""
    response = await post_form(client, "/portal/company/api", {"name": name})
    assert response.status_code == 200, response.text
    match = SECRET.search(response.text)
    assert match, "the new token's secret is not on the page"
    return match.group(1)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert "location" not in response.headers
    body = response.json()
    assert body["error"] == status and body["message"] and body["request_id"]
    return body


async def test_a_token_is_shown_once_and_kept_only_as_its_hash(client, other_client):
    superuser = await signed_in_superuser(client)
    company_page = await client.get("/portal/company")
    assert 'href="/portal/company/api"' in company_page.text

    secret = await new_token(client)

    listing = await client.get("/portal/company/api")
    assert secret not in listing.text
    assert f"<code>{secret[:12]}…</code>" in listing.text and "Rapportserver" in listing.text
    [row] = await ApiToken.select().where(ApiToken.company == superuser.company)
    assert secret not in repr(row)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["created_by"] == superuser.id and row["created_at"] is not None
    account = await other_client.get("/api/v1/account", headers=bearer(secret))
    assert account.status_code == 200
    assert account.json()["company"]["id"] == superuser.company


async def test_the_new_token_comes_in_the_region_for_htmx(client):
    await signed_in_superuser(client)
    token = (await client.get("/portal/company/api")).text
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', token).group(1)  # type: ignore[union-attr]

    response = await client.post(
        "/portal/company/api",
        data={"name": "Integrasjon", "_csrf_token": csrf},
        headers={"HX-Request": "true", "HX-Target": "api-tokens"},
    )

    assert response.status_code == 200
    assert "<html" not in response.text and response.text.startswith(("<div", "{#", "\n"))
    assert SECRET.search(response.text)
    empty = await post_form(client, "/portal/company/api", {"name": "  "})
    assert empty.status_code == 422 and "Gi nøkkelen et navn" in empty.text


async def test_without_a_token_or_session_the_api_answers_401_json_not_a_redirect(other_client):
    for path in ROUTES:
        response = await other_client.get(path, follow_redirects=False)
        assert_json_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer spt_kort",
        "Bearer spt_" + "A" * 43,  # the right shape, no such token
        "Token {secret}",
        "{secret}",
        "Bearer {secret}x",
        "Bearer {secret} {secret}",
        "Bearer\t{secret}",
    ],
)
async def test_a_malformed_or_unknown_authorization_header_is_401_even_with_a_session(
    client, header
):
    await signed_in_superuser(client)
    secret = await new_token(client)
    assert (await client.get("/api/v1/account")).status_code == 200  # the session alone

    response = await client.get(
        "/api/v1/account", headers={"Authorization": header.format(secret=secret)}
    )

    assert_json_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_revoked_token_is_refused_at_once(client, other_client):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)
    assert (await other_client.get("/api/v1/tickets", headers=bearer(secret))).status_code == 200
    [token] = await ApiToken.select(ApiToken.id).where(ApiToken.company == superuser.company)

    revoked = await post_form(client, f"/portal/company/api/{token['id']}/revoke", {})

    assert revoked.status_code == 303
    for path in ROUTES:
        response = await other_client.get(path, headers=bearer(secret))
        assert_json_error(response, 401)
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    listing = await client.get("/portal/company/api")
    assert "Trukket tilbake" in listing.text and f"revoke-{token['id']}" not in listing.text


async def test_a_token_stops_when_its_maker_is_deactivated(client, other_client):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)
    assert (await other_client.get("/api/v1/usage", headers=bearer(secret))).status_code == 200

    await User.update({User.active: False}).where(User.id == superuser.id)

    assert_json_error(await other_client.get("/api/v1/usage", headers=bearer(secret)), 401)


async def test_a_token_reads_and_nothing_more(client, other_client):
    """A token reads as a member: it is no session for the portal's pages, and under /api/
    it speaks for a member of its company, whoever made it."""
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)

    page = await other_client.get("/portal", headers=bearer(secret), follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    who = await api_tokens.authenticate(f"Bearer {secret}")
    assert who is not None and who.role == Role.member.value
    assert who.company == superuser.company


async def test_only_the_superuser_manages_tokens(client, other_client):
    superuser = await signed_in_superuser(client)
    member_email = new_email("medlem")
    await User(
        email=member_email,
        name="Mona Medlem",
        role=Role.member.value,
        company=superuser.company,
        password_hash=hash_password(PASSWORD),
    ).save()
    secret = await new_token(client)
    [token] = await ApiToken.select(ApiToken.id).where(ApiToken.company == superuser.company)
    assert (await login(other_client, member_email)).status_code == 303

    assert 'href="/portal/company/api"' not in (await other_client.get("/portal/company")).text
    assert (await other_client.get("/portal/company/api")).status_code == 403
    made = await post_form(other_client, "/portal/company/api", {"name": "Medlemmets"})
    assert made.status_code == 403
    gone = await post_form(other_client, f"/portal/company/api/{token['id']}/revoke", {})
    assert gone.status_code == 403

    assert await ApiToken.count().where(ApiToken.company == superuser.company) == 1
    assert (await other_client.get("/api/v1/account")).status_code == 200  # a member reads
    assert (await other_client.get("/api/v1/account", headers=bearer(secret))).status_code == 200


async def test_another_companys_token_and_ticket_do_not_exist(client, other_client):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)
    theirs_id, theirs_email = await make_company("Annet firma AS")
    theirs = await make_ticket(theirs_id, "Deres sak")
    mine = await make_ticket(superuser.company, "Vår sak")
    assert (await login(other_client, theirs_email)).status_code == 303
    their_secret = await new_token(other_client, "Deres nøkkel")
    [their_token] = await ApiToken.select(ApiToken.id).where(ApiToken.company == theirs_id)

    for number in (tickets.ticket_number(theirs.id), str(theirs.id)):
        response = await client.get(f"/api/v1/tickets/{number}", headers=bearer(secret))
        assert_json_error(response, 404)
        assert "Deres sak" not in response.text
    for number in (tickets.ticket_number(mine.id), str(mine.id), f"sup{mine.id}"):
        response = await client.get(f"/api/v1/tickets/{number}", headers=bearer(secret))
        assert response.status_code == 200 and response.json()["subject"] == "Vår sak"
    for number in ("SUP-", "0", "SUP-9999999999", "x" * 300, "%00"):
        assert_json_error(await client.get(f"/api/v1/tickets/{number}"), 404)
    listing = (await client.get("/api/v1/tickets", headers=bearer(secret))).json()
    assert [t["subject"] for t in listing["tickets"]] == ["Vår sak"]

    revoking = await post_form(client, f"/portal/company/api/{their_token['id']}/revoke", {})
    assert revoking.status_code == 404
    working = await other_client.get("/api/v1/account", headers=bearer(their_secret))
    assert working.status_code == 200


async def test_a_ticket_comes_with_its_thread_without_internal_notes_and_its_time(
    client, other_client
):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)
    technician = await create_staff(
        email=new_email("tekniker"), name="Tor Tekniker", role="technician", password=PASSWORD
    )
    ticket = await tickets.open_ticket(
        superuser, {"product": "inventor", "subject": "Låser seg", "description": "Ved lagring."}
    )
    await tickets.add_message(superuser, ticket, "Det skjer igjen.")
    await tickets.add_message(technician, ticket, "Kunden er sint", internal=True)
    await tickets.add_message(technician, ticket, "Prøv oppdateringen.")
    await tickets.log_time_from_form(
        technician, ticket, {"minutes": "20", "performed_on": "", "channel": "phone", "note": ""}
    )

    response = await other_client.get(
        f"/api/v1/tickets/{tickets.ticket_number(ticket.id)}", headers=bearer(secret)
    )

    assert response.status_code == 200
    body = response.json()
    assert body["number"] == tickets.ticket_number(ticket.id)
    assert [(m["body"], m["from_support"]) for m in body["messages"]] == [
        ("Det skjer igjen.", False),
        ("Prøv oppdateringen.", True),
    ]
    assert "Kunden er sint" not in response.text
    [entry] = body["time_entries"]
    assert (entry["actual_minutes"], entry["billed_minutes"]) == (20, 30)
    assert entry["coverage"] == "hourly" and entry["hourly_amount_ore"] > 0
    assert entry["technician_name"] == "Tor Tekniker" and entry["voided"] is False


async def test_the_account_includes_outstanding_hourly_charges(client, other_client):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)
    technician = await create_staff(
        email=new_email("tekniker"), name="Tor Tekniker", role="technician", password=PASSWORD
    )
    ticket = await make_ticket(superuser.company, "Uten avtale")
    await tickets.log_time_from_form(
        technician, ticket, {"minutes": "45", "performed_on": "", "channel": "phone", "note": ""}
    )
    owed = await charges.outstanding_ore(superuser.company)
    assert owed > 0

    account = (await other_client.get("/api/v1/account", headers=bearer(secret))).json()

    assert account["outstanding_charges_ore"] == owed
    assert account["outstanding_charges_incl_mva_ore"] == owed + (owed * 25 + 50) // 100
    assert account["remaining_minutes"] == 0 and account["lots"] == []
    [listed] = (await other_client.get("/api/v1/tickets", headers=bearer(secret))).json()["tickets"]
    assert (listed["billed_minutes"], listed["hourly_minutes"]) == (45, 45)
    assert listed["cost_ore"] == listed["outstanding_ore"] == owed


async def test_last_used_is_written_at_most_once_a_minute(client, other_client, monkeypatch):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)

    async def last_used() -> datetime.datetime | None:
        [row] = await ApiToken.select(ApiToken.last_used_at).where(
            ApiToken.company == superuser.company
        )
        return row["last_used_at"]

    assert await last_used() is None
    assert "Aldri" in (await client.get("/portal/company/api")).text
    assert (await other_client.get("/api/v1/account", headers=bearer(secret))).status_code == 200
    first = await last_used()
    assert first is not None and abs(clock.now() - first) < datetime.timedelta(minutes=1)
    assert (await other_client.get("/api/v1/tickets", headers=bearer(secret))).status_code == 200
    assert await last_used() == first

    later = clock.now() + datetime.timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert (await other_client.get("/api/v1/usage", headers=bearer(secret))).status_code == 200
    assert await last_used() == later
    assert "Aldri" not in (await client.get("/portal/company/api")).text


async def _credit(company_id: int, minutes: int, key: str) -> None:
    await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=clock.today() + datetime.timedelta(days=200),
        product_codes=["inventor"],
        key=f"{key}-{company_id}",
        cause=ledger.Cause(type="order"),
    )


async def test_usage_pages_by_cursor_neither_repeat_nor_skip_a_row(client, other_client):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)
    for n in range(statement.PAGE_SIZE + 12):
        await _credit(superuser.company, 60, f"many-{n}")

    first = (await other_client.get("/api/v1/usage", headers=bearer(secret))).json()
    for n in range(3):  # new rows between the pages
        await _credit(superuser.company, 30, f"later-{n}")
    second = (
        await other_client.get(
            "/api/v1/usage", params={"cursor": first["next"]}, headers=bearer(secret)
        )
    ).json()

    assert len(first["rows"]) == statement.PAGE_SIZE and first["next"]
    assert second["next"] is None
    ids = [row["id"] for row in first["rows"] + second["rows"]]
    assert len(ids) == len(set(ids)) == statement.PAGE_SIZE + 12
    assert [row["balance"] for row in first["rows"] + second["rows"]] == [
        60 * n for n in range(statement.PAGE_SIZE + 12, 0, -1)
    ]
    assert first["period_end"] == clock.today().isoformat()
    # The newest rows come first on a new first page.
    again = (await other_client.get("/api/v1/usage", headers=bearer(secret))).json()
    assert [row["minutes"] for row in again["rows"][:3]] == [30, 30, 30]


async def test_usage_filters_as_the_statement_does(client):
    superuser = await signed_in_superuser(client)
    await _credit(superuser.company, 60, "now")
    today = clock.today()

    this_month = (await client.get("/api/v1/usage", params={"period": "this_month"})).json()
    assert [row["kind"] for row in this_month["rows"]] == ["credit"]
    assert this_month["period_start"] == today.replace(day=1).isoformat()
    old = today - datetime.timedelta(days=800)
    custom = await client.get(
        "/api/v1/usage", params={"from": old.isoformat(), "to": old.isoformat()}
    )
    assert custom.status_code == 200 and custom.json()["rows"] == []
    assert custom.json()["period_start"] == old.isoformat()
    other_product = await client.get("/api/v1/usage", params={"product": "fusion"})
    assert other_product.json()["rows"] == []


async def test_tickets_page_by_cursor_and_filter(client):
    superuser = await signed_in_superuser(client)
    made = [
        await make_ticket(superuser.company, f"Sak {n}")
        for n in range(tickets.HISTORY_PAGE_SIZE + 3)
    ]

    first = (await client.get("/api/v1/tickets")).json()
    second = (await client.get("/api/v1/tickets", params={"cursor": first["next"]})).json()

    numbers = [t["id"] for t in first["tickets"] + second["tickets"]]
    assert numbers == sorted((t.id for t in made), reverse=True)
    assert len(first["tickets"]) == tickets.HISTORY_PAGE_SIZE and second["next"] is None
    found = (await client.get("/api/v1/tickets", params={"q": f"SUP-{made[4].id:06d}"})).json()
    assert [t["subject"] for t in found["tickets"]] == ["Sak 4"]
    closed = (await client.get("/api/v1/tickets", params={"status": "closed"})).json()
    assert closed["tickets"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/tickets", {"status": "bogus"}, "status"),
        ("/api/v1/tickets", {"cursor": "abc"}, "cursor"),
        ("/api/v1/tickets", {"cursor": "L12"}, "cursor"),
        ("/api/v1/tickets", {"cursor": "a b"}, "cursor"),
        ("/api/v1/tickets", {"page": "2"}, "page"),
        ("/api/v1/tickets", {"q": "null\x00byte"}, "q"),
        ("/api/v1/tickets", {"q": "x" * 201}, "q"),
        ("/api/v1/tickets", {"product": "a\x7fb"}, "product"),
        ("/api/v1/usage", {"period": "forever"}, "period"),
        ("/api/v1/usage", {"from": "2026-13-01"}, "from"),
        ("/api/v1/usage", {"to": "31.01.2026"}, "to"),
        ("/api/v1/usage", {"from": "2026-01-01", "period": "this_month"}, "period"),
        ("/api/v1/usage", {"cursor": "T"}, "cursor"),
        ("/api/v1/usage", {"cursor": "L" + "9" * 12}, "cursor"),
        ("/api/v1/usage", {"after": "L1"}, "after"),
        ("/api/v1/account", {"x": "1"}, "x"),
    ],
)
async def test_a_bad_query_parameter_is_400_json_saying_which(client, path, params, field):
    await signed_in_superuser(client)

    response = await client.get(path, params=params)

    body = assert_json_error(response, 400)
    assert set(body["errors"]) == {field}, body
    assert all(body["errors"].values())


async def test_a_parameter_given_twice_is_400(client):
    await signed_in_superuser(client)
    body = assert_json_error(await client.get("/api/v1/tickets?status=open&status=closed"), 400)
    assert set(body["errors"]) == {"status"}


async def test_every_answer_is_no_store(client, other_client):
    superuser = await signed_in_superuser(client)
    secret = await new_token(client)
    ticket = await make_ticket(superuser.company)
    for path in (*ROUTES, f"/api/v1/tickets/{ticket.id}"):
        response = await other_client.get(path, headers=bearer(secret))
        assert response.headers["cache-control"] == "no-store", path
    assert_json_error(await other_client.get("/api/v1/nothing", headers=bearer(secret)), 404)
    assert_json_error(
        await other_client.get("/api/v1/tickets?status=x", headers=bearer(secret)), 400
    )


async def test_staff_sessions_are_refused_with_403_json(client):
    email = new_email("tekniker")
    await create_staff(email=email, name="Tor", role="technician", password=PASSWORD)
    assert (await login(client, email)).status_code == 303
    for path in ROUTES:
        assert_json_error(await client.get(path), 403)


async def test_the_openapi_schema_describes_the_api_for_a_generated_client(client):
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    components = schema["components"]

    def query_params(path: str) -> set[str]:
        return {p["name"] for p in paths[path]["get"]["parameters"] if p["in"] == "query"}

    def fields(path: str) -> set[str]:
        ref = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        return set(components["schemas"][ref["$ref"].rsplit("/", 1)[-1]]["properties"])

    for path in ("/api/v1/account", "/api/v1/tickets", "/api/v1/tickets/{number}", "/api/v1/usage"):
        operation = paths[path]["get"]
        assert operation["security"] == [{"BearerToken": []}]
        assert "401" in operation["responses"]
    assert components["securitySchemes"]["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": components["securitySchemes"]["BearerToken"]["description"],
    }
    assert query_params("/api/v1/tickets") == {"q", "status", "product", "cursor"}
    assert query_params("/api/v1/usage") == {"period", "from", "to", "product", "cursor"}
    assert [p["name"] for p in paths["/api/v1/tickets/{number}"]["get"]["parameters"]] == ["number"]
    assert {"outstanding_charges_ore", "remaining_minutes", "lots"} <= fields("/api/v1/account")
    assert fields("/api/v1/tickets") == {"tickets", "next"}
    assert {"messages", "time_entries", "number"} <= fields("/api/v1/tickets/{number}")
    assert {"rows", "next", "period_start", "period_end"} == fields("/api/v1/usage")
    usage_row = components["schemas"]["UsageRow"]["properties"]
    assert {"balance", "minutes", "paid_by", "ticket_number"} <= set(usage_row)
    status = next(p for p in paths["/api/v1/tickets"]["get"]["parameters"] if p["name"] == "status")
    assert "waiting_for_customer" in str(status["schema"])


async def test_the_token_page_and_the_apis_messages_in_english(client):
    superuser = await signed_in_superuser(client)
    await new_token(client)
    [token] = await ApiToken.select(ApiToken.id).where(ApiToken.company == superuser.company)
    await client.get("/language/en")

    page = (await client.get("/portal/company/api")).text
    assert "API keys" in page and "Revoke…" in page and "Never" in page
    revoked = await client.post(
        f"/portal/company/api/{token['id']}/revoke",
        data={"_csrf_token": re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)},  # type: ignore[union-attr]
        headers={"HX-Request": "true", "HX-Target": "api-tokens"},
    )
    assert revoked.status_code == 200 and "<html" not in revoked.text
    assert "Revoked" in revoked.text
    bad = (await client.get("/api/v1/usage", params={"from": "i går"})).json()
    assert bad["errors"] == {"from": "Write the date as YYYY-MM-DD, for example 2026-01-31."}
