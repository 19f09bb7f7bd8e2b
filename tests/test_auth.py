"""Sign-in, sign-out, session rotation and sign-in throttling (issue 2)."""

from __future__ import annotations

import asyncio
import os

from litestar.stores.memory import MemoryStore
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.config import load_settings
from backend.services.accounts import LoginThrottle
from tests.support import (
    PASSWORD,
    PRODUCTION_ENV,
    csrf_token,
    login,
    logout,
    post_form,
    register,
)

TOO_MANY = "For mange mislykkede innlogginger"
REDIS_URL = "redis://127.0.0.1:6379/0"


def session_cookie(response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "session":
            return rest.split(";")[0]
    return None


async def test_sign_in_and_out(client, other_client):
    form = await register(client)

    response = await login(other_client, form["email"])
    assert response.status_code == 303
    assert response.headers["location"] == "/portal"
    assert (await other_client.get("/portal")).status_code == 200

    response = await logout(other_client)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    after = await other_client.get("/portal", follow_redirects=False)
    assert after.status_code == 303
    assert after.headers["location"] == "/login?next=/portal"


async def test_wrong_password_and_unknown_email_get_the_same_message(client, other_client):
    form = await register(client)
    wrong = await login(other_client, form["email"], "feil-passord-99")
    unknown = await login(other_client, "ingen@example.no", "feil-passord-99")
    for response in (wrong, unknown):
        assert response.status_code == 422
        assert "Feil e-postadresse eller passord." in response.text
        assert 'value="feil-passord-99"' not in response.text


async def test_next_parameter_returns_to_the_page_but_never_off_site(client, other_client):
    form = await register(client)
    token = await csrf_token(other_client)
    data = {"email": form["email"], "password": PASSWORD, "_csrf_token": token}
    response = await other_client.post(
        "/login", data={**data, "next": "/portal/company"}, follow_redirects=False
    )
    assert response.headers["location"] == "/portal/company"
    response = await other_client.post(
        "/login", data={**data, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert response.headers["location"] == "/portal"


async def test_cookie_flags_in_development(client):
    form = await register(client)
    response = await login(client, form["email"])
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith("session="))
    assert "HttpOnly" in header
    assert "SameSite=lax" in header or "SameSite=Lax" in header
    assert "Path=/" in header


async def test_session_id_changes_at_sign_in_and_the_old_one_stops_working(client, other_client):
    form = await register(client)
    first = session_cookie(await login(other_client, form["email"]))
    assert first and (await other_client.get("/portal")).status_code == 200

    # Signing in again (say, after a password prompt) gives a new id; the old one is dead.
    second = session_cookie(await login(other_client, form["email"]))
    assert second and second != first
    other_client.cookies.set("session", first)
    stale = await other_client.get("/portal", follow_redirects=False)
    assert stale.status_code == 303
    assert stale.headers["location"].startswith("/login")


async def test_a_planted_session_id_is_not_adopted_at_sign_in(client, other_client):
    form = await register(client)
    planted = "a" * 64
    other_client.cookies.set("session", planted)

    issued = session_cookie(await login(other_client, form["email"]))

    assert issued and issued != planted
    # The attacker, holding only the planted id, is not signed in.
    client.cookies.clear()
    client.cookies.set("session", planted)
    response = await client.get("/portal", follow_redirects=False)
    assert response.status_code == 303


async def test_sign_out_kills_the_session_on_the_server(client, other_client):
    form = await register(client)
    sid = session_cookie(await login(other_client, form["email"]))
    await logout(other_client)
    # A copy of the cookie taken before sign-out no longer works.
    client.cookies.clear()
    client.cookies.set("session", sid)
    assert (await client.get("/portal", follow_redirects=False)).status_code == 303


async def test_anonymous_visits_get_no_session_cookie(client):
    response = await client.get("/")
    assert session_cookie(response) is None
    static = await client.get("/static/app.js")
    assert static.status_code == 200
    assert not [h for h in static.headers.get_list("set-cookie") if h.startswith("session=")]


async def test_sixth_failed_sign_in_for_an_email_is_throttled(client, other_client):
    form = await register(client)
    for _ in range(5):
        response = await login(other_client, form["email"], "feil-passord-99")
        assert response.status_code == 422
    sixth = await login(other_client, form["email"], "feil-passord-99")
    assert sixth.status_code == 429
    assert TOO_MANY in sixth.text
    # Even the right password waits until the window has passed.
    right = await login(other_client, form["email"])
    assert right.status_code == 429


async def test_failures_from_one_address_are_throttled_across_emails(client):
    for attempt in range(5):
        response = await login(client, f"gjett{attempt}@example.no", "feil-passord-99")
        assert response.status_code == 422
    response = await login(client, "gjett-igjen@example.no", "feil-passord-99")
    assert response.status_code == 429
    assert TOO_MANY in response.text


async def test_throttle_answers_htmx_with_the_form_fragment(client):
    for _ in range(5):
        await login(client, "x@example.no", "feil-passord-99")
    response = await post_form(
        client, "/login", {"email": "x@example.no", "password": "p"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 429
    assert response.text.lstrip().startswith("<form")
    assert TOO_MANY in response.text


async def test_success_resets_the_email_count_but_not_the_address_count():
    throttle = LoginThrottle(MemoryStore(), limit=5, window=300)
    for _ in range(4):
        await throttle.record_failure("kari@example.no", "10.0.0.1")
    await throttle.reset("kari@example.no")
    await throttle.record_failure("kari@example.no", "10.0.0.2")
    assert not await throttle.blocked("kari@example.no", "10.0.0.2")
    await throttle.record_failure("ola@example.no", "10.0.0.1")
    assert await throttle.blocked("someone@example.no", "10.0.0.1")


async def test_failures_are_forgotten_when_the_window_has_passed():
    store = MemoryStore()
    throttle = LoginThrottle(store, limit=2, window=1)
    await throttle.record_failure("kari@example.no", "10.0.0.1")
    await throttle.record_failure("kari@example.no", "10.0.0.1")
    assert await throttle.blocked("kari@example.no", "10.0.0.1")
    await asyncio.sleep(1.1)
    assert not await throttle.blocked("kari@example.no", "10.0.0.1")


async def test_production_cookies_are_host_prefixed_and_secure(tmp_path):
    settings = load_settings({**os.environ, **PRODUCTION_ENV, "PORTAL_VAR_DIR": str(tmp_path)})
    app = create_app(settings, db_pool=False)
    async with AsyncTestClient(app=app, base_url="https://portal.example") as browser:
        form = await register(browser)
        response = await login(browser, form["email"])
        # register() signed in already; login() signs in again and rotates the id.
        header = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith("__Host-session=")
        )
        assert "Secure" in header and "HttpOnly" in header and "Path=/" in header
        assert "Domain" not in header
        page = await browser.get("/portal")
        assert page.status_code == 200
        assert page.headers["strict-transport-security"].startswith("max-age=")


async def test_with_redis_two_instances_share_sessions_and_sign_out(tmp_path):
    """REDIS_URL: a session made on one instance works on another, and dies on both."""
    import redis.asyncio as redis

    environ = {**os.environ, "PORTAL_VAR_DIR": str(tmp_path), "REDIS_URL": REDIS_URL}
    first_app = create_app(load_settings(environ), db_pool=False)
    second_app = create_app(load_settings(environ), db_pool=False)
    async with (
        AsyncTestClient(app=first_app) as first,
        AsyncTestClient(app=second_app) as second,
    ):
        form = await register(first)
        sid = first.cookies.get("session")
        assert sid
        store = redis.Redis.from_url(REDIS_URL)
        try:
            assert await store.exists(f"portal_sessions:{sid}")
            second.cookies.set("session", sid)
            assert form["company_name"] in (await second.get("/portal")).text
            await logout(second)
            assert not await store.exists(f"portal_sessions:{sid}")
        finally:
            await store.aclose()
        first.cookies.set("session", sid)
        assert (await first.get("/portal", follow_redirects=False)).status_code == 303
