"""CSRF, security headers, who may see what, and the health check (issue 2)."""

from __future__ import annotations

import warnings

import pytest
from piccolo.engine.postgres import PostgresEngine

from backend.services.users import create_staff, hash_password
from backend.tables import Company, Role, User
from tests.support import PASSWORD, csrf_token, login, new_email, post_form, register

CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


async def staff(role: str) -> str:
    email = new_email(role)
    await create_staff(email=email, name=f"{role} test", role=role, password=PASSWORD)
    return email


async def member_of(superuser_email: str) -> str:
    superuser = await User.objects().get(User.email == superuser_email)
    email = new_email("kollega")
    await User(
        email=email,
        name="Kollega",
        role=Role.member.value,
        company=superuser.company,
        password_hash=hash_password(PASSWORD),
    ).save()
    return email


async def test_post_without_csrf_token_is_refused_and_changes_nothing(client):
    form = await register(client)
    response = await client.post(
        "/portal/company",
        data={
            "address": "Ny vei 1",
            "postal_code": "0150",
            "city": "Oslo",
            "name": "Kari",
            "phone": "22334455",
        },
    )
    assert response.status_code == 403
    assert "Skjemaet var utløpt eller ugyldig" in response.text
    company = await Company.objects().get(Company.org_number == form["org_number"])
    assert company.address == "Verkstedveien 12"


async def test_post_with_a_forged_csrf_token_is_refused(client):
    await csrf_token(client)
    response = await client.post("/register", data={"company_name": "X", "_csrf_token": "0" * 128})
    assert response.status_code == 403


async def test_csrf_header_is_accepted_for_htmx(client):
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={"email": "a@example.no", "password": "feil-passord-1"},
        headers={"x-csrftoken": token, "HX-Request": "true"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["/", "/register", "/static/app.js", "/finnes-ikke", "/healthz"])
async def test_security_headers_on_every_response(client, path):
    response = await client.get(path)
    assert response.headers["content-security-policy"].startswith(CSP)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # development: plain http


async def test_security_headers_on_refusals_and_throttling(client):
    refused = await client.post("/logout")
    assert refused.status_code == 403
    for _ in range(6):
        throttled = await login(client, "x@example.no", "feil-passord-1")
    assert throttled.status_code == 429
    for response in (refused, throttled):
        assert response.headers["content-security-policy"].startswith(CSP)
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_pages_have_no_inline_script(client):
    html = (await client.get("/")).text
    assert "<script>" not in html and "<script >" not in html
    assert 'src="/static/vendor/htmx.min.js"' in html


async def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in ("/portal", "/portal/company", "/staff"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


async def test_company_users_get_403_on_staff_pages(client):
    form = await register(client)
    response = await client.get("/staff")
    assert response.status_code == 403
    assert "Ingen tilgang" in response.text
    assert form["company_name"] not in response.text


@pytest.mark.parametrize("role", ["technician", "admin"])
async def test_staff_see_every_company_but_not_the_customer_portal(client, other_client, role):
    form = await register(client)
    email = await staff(role)
    response = await login(other_client, email)
    assert response.headers["location"] == "/staff"
    overview = await other_client.get("/staff/companies")
    assert overview.status_code == 200
    assert form["company_name"] in overview.text and form["email"] in overview.text
    assert (await other_client.get("/portal")).status_code == 403


async def test_a_company_sees_only_its_own_data(client, other_client):
    first = await register(client, company_name="Første Verksted AS")
    second = await register(other_client, company_name="Andre Fabrikk AS")
    mine = await client.get("/portal")
    theirs = await other_client.get("/portal/company")
    assert "Første Verksted AS" in mine.text and "Andre Fabrikk AS" not in mine.text
    assert "Andre Fabrikk AS" in theirs.text and first["email"] not in theirs.text
    assert second["email"] not in mine.text


async def test_member_reads_company_details_but_cannot_change_them(client, other_client):
    form = await register(client)
    member = await member_of(form["email"])
    await login(other_client, member)
    page = await other_client.get("/portal/company")
    assert page.status_code == 200 and "Verkstedveien 12" in page.text
    assert 'id="company-form"' not in page.text
    response = await post_form(
        other_client,
        "/portal/company",
        {
            "address": "Kapret 1",
            "postal_code": "0150",
            "city": "Oslo",
            "name": "Member",
            "phone": "22334455",
        },
    )
    assert response.status_code == 403
    company = await Company.objects().get(Company.org_number == form["org_number"])
    assert company.address == "Verkstedveien 12"


async def test_superuser_edits_address_and_contact(client):
    form = await register(client)
    response = await post_form(
        client,
        "/portal/company",
        {
            "address": "Nyveien 5",
            "postal_code": "0150",
            "city": "Oslo",
            "name": "Kari Ny",
            "phone": "915 55 555",
        },
    )
    assert response.status_code == 200
    assert "Endringene er lagret." in response.text
    company = await Company.objects().get(Company.org_number == form["org_number"])
    user = await User.objects().get(User.email == form["email"])
    assert (company.address, company.postal_code, company.city) == ("Nyveien 5", "0150", "Oslo")
    assert (user.name, user.phone) == ("Kari Ny", "+4791555555")


async def test_superuser_edit_with_bad_values_keeps_input_and_saves_nothing(client):
    form = await register(client)
    response = await post_form(
        client,
        "/portal/company",
        {
            "address": "",
            "postal_code": "12",
            "city": "Oslo",
            "name": "Kari",
            "phone": "x",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith("<form")
    assert "Postnummeret skal være fire siffer." in response.text
    assert 'value="Oslo"' in response.text
    company = await Company.objects().get(Company.org_number == form["org_number"])
    assert company.postal_code == "7030"


async def test_healthz_reports_the_database(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_is_503_when_the_database_is_down(client):
    working = Company._meta.db
    # A real engine pointing at a port where no database listens.
    with warnings.catch_warnings():  # the engine warns at creation that it cannot connect
        warnings.simplefilter("ignore")
        Company._meta.db = PostgresEngine(config={"dsn": "postgresql://nobody@127.0.0.1:1/none"})
    try:
        response = await client.get("/healthz")
    finally:
        Company._meta.db = working
    assert response.status_code == 503
    body = response.json()
    # Why goes to the log only (tests/test_no_500.py): the public learns no hosts or drivers.
    assert body == {"status": "error", "database": "unavailable"}


async def _wrong_sign_in(client, email: str, forwarded_for: str):
    return await post_form(
        client,
        "/login",
        {"email": email, "password": "feil-passord-99"},
        headers={"X-Forwarded-For": forwarded_for},
    )


async def test_a_spoofed_forwarded_for_does_not_give_a_fresh_address(live_server):
    """Served as in production with no proxy configured: X-Forwarded-For is the client's own
    words, and each new value must not start a new count for the address (issue 8)."""
    import httpx

    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        for attempt in range(5):
            response = await _wrong_sign_in(
                client, f"gjett{attempt}@example.no", f"203.0.113.{attempt}"
            )
            assert response.status_code == 422
        response = await _wrong_sign_in(client, "gjett5@example.no", "198.51.100.77")
        assert response.status_code == 429
        assert "For mange mislykkede innlogginger" in response.text


async def test_behind_a_configured_proxy_the_forwarded_address_is_counted(proxied_server):
    """FORWARDED_ALLOW_IPS=127.0.0.1: the proxy's X-Forwarded-For names the client, so one
    client behind the proxy is throttled and another is not."""
    import httpx

    async with httpx.AsyncClient(base_url=proxied_server, timeout=30) as client:
        for attempt in range(5):
            response = await _wrong_sign_in(client, f"gjett{attempt}@example.no", "203.0.113.7")
            assert response.status_code == 422
        throttled = await _wrong_sign_in(client, "gjett5@example.no", "203.0.113.7")
        # What the client wrote into the header itself comes before the proxy's entry.
        prefixed = await _wrong_sign_in(client, "gjett6@example.no", "198.51.100.9, 203.0.113.7")
        other_client = await _wrong_sign_in(client, "gjett7@example.no", "203.0.113.8")
    assert throttled.status_code == 429
    assert prefixed.status_code == 429
    assert other_client.status_code == 422
