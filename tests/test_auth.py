"""Sign-in, sign-out, session rotation and sign-in throttling (issue 2)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.config import load_settings
from backend.services import users
from backend.services.users import LoginThrottle, TooManyAttempts
from backend.tables import BrowserSession, User
from tests.support import (
    PASSWORD,
    PRODUCTION_ENV,
    csrf_token,
    login,
    logout,
    make_company,
    post_form,
    register,
)

TOO_MANY = "For mange mislykkede innlogginger"


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


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


async def fail(throttle: LoginThrottle, email: str, ip: str) -> None:
    """One attempt whose password turned out wrong (it keeps its place in the count)."""
    await throttle.reserve(email, ip)


async def test_success_resets_the_email_count_but_not_the_address_count():
    throttle = LoginThrottle(limit=5, window=300)
    for _ in range(4):
        await fail(throttle, "kari@example.no", "10.0.0.1")
    await throttle.succeeded(await throttle.reserve("kari@example.no", "10.0.0.1"))
    # Kari's e-mail starts again: five more tries from another address.
    for _ in range(5):
        await fail(throttle, "kari@example.no", "10.0.0.2")
    # 10.0.0.1 has four failures (the success gave its place back): one more, then no more.
    await fail(throttle, "ola@example.no", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        await throttle.reserve("someone@example.no", "10.0.0.1")


async def test_an_office_signing_in_from_one_address_is_not_throttled_by_its_successes():
    throttle = LoginThrottle(limit=5, window=300)
    for person in range(20):
        reservation = await throttle.reserve(f"ansatt{person}@example.no", "10.0.0.9")
        await throttle.succeeded(reservation)


async def test_failures_are_forgotten_when_the_window_has_passed():
    clock = FakeClock()
    throttle = LoginThrottle(limit=2, window=300, now_ms=clock)
    await fail(throttle, "kari@example.no", "10.0.0.1")
    clock.ms += 200_000
    await fail(throttle, "kari@example.no", "10.0.0.1")
    # The window runs from the first failure; later ones do not stretch it.
    clock.ms += 99_999
    with pytest.raises(TooManyAttempts):
        await throttle.reserve("kari@example.no", "10.0.0.1")
    clock.ms += 1
    await fail(throttle, "kari@example.no", "10.0.0.1")


async def test_a_refused_address_adds_nothing_to_the_emails_count():
    throttle = LoginThrottle(limit=5, window=300)
    for attempt in range(5):
        await fail(throttle, f"gjett{attempt}@example.no", "10.0.0.66")
    for _ in range(10):
        with pytest.raises(TooManyAttempts):
            await throttle.reserve("kari@example.no", "10.0.0.66")
    # Kari herself, elsewhere, still has all five tries.
    for _ in range(5):
        await fail(throttle, "kari@example.no", "10.0.0.2")


async def test_one_ipv6_subscriber_network_counts_as_one_address():
    throttle = LoginThrottle(limit=5, window=300)
    for host in range(1, 6):
        await fail(throttle, f"gjett{host}@example.no", f"2001:db8:1:2::{host}")
    with pytest.raises(TooManyAttempts):
        await throttle.reserve("gjett@example.no", "2001:db8:1:2:ffff::1")
    await fail(throttle, "gjett@example.no", "2001:db8:1:3::1")


class CountingHasher:
    """The real hasher, counting the passwords it checks (from any thread)."""

    def __init__(self, real) -> None:
        self.real = real
        self.checked = 0
        self.lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        with self.lock:
            self.checked += 1
        return self.real.verify(password_hash, password)

    def hash(self, password: str) -> str:
        return self.real.hash(password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return self.real.check_needs_rehash(password_hash)


@pytest.fixture
async def asgi_client(app) -> AsyncIterator[httpx.AsyncClient]:
    """Requests served on this test's own event loop, so they really run at the same time
    (the AsyncTestClient hands each request to another thread, one after the other)."""
    from piccolo.engine.postgres import PostgresEngine

    from backend.tables import User

    engine = User._meta.db
    # As in production, a pool (opened on this loop): a connection per query would run the
    # server out of connections at 150 at once.
    pooled = isinstance(engine, PostgresEngine)
    if pooled:
        await engine.start_connection_pool(max_size=10)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
            yield client
    finally:
        if pooled:
            await engine.close_connection_pool()


async def test_150_simultaneous_wrong_passwords_check_at_most_five(asgi_client, monkeypatch):
    _, email = await make_company()
    hasher = CountingHasher(users._hasher)
    monkeypatch.setattr(users, "_hasher", hasher)
    token = await csrf_token(asgi_client)
    data = {"email": email, "password": "feil-passord-99", "_csrf_token": token}

    responses = await asyncio.gather(*(asgi_client.post("/login", data=data) for _ in range(150)))

    statuses = Counter(response.status_code for response in responses)
    assert hasher.checked <= 5
    assert statuses == {422: hasher.checked, 429: 150 - hasher.checked}
    assert all(TOO_MANY in r.text for r in responses if r.status_code == 429)
    # The window holds for the right password too.
    right = await asgi_client.post("/login", data={**data, "password": PASSWORD})
    assert right.status_code == 429


async def test_a_password_check_leaves_the_event_loop_free(asgi_client, monkeypatch):
    """While argon2 works on a sign-in, the same process still answers /healthz."""
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    real = users._hasher

    class SlowHasher(CountingHasher):
        def verify(self, password_hash: str, password: str) -> bool:
            started.set()
            # On the event loop this would block everything: give up after a while, so the
            # test fails instead of hanging.
            release.wait(timeout=3)
            finished.set()
            return real.verify(password_hash, password)

    monkeypatch.setattr(users, "_hasher", SlowHasher(real))
    token = await csrf_token(asgi_client)
    sign_in = asyncio.create_task(
        asgi_client.post(
            "/login",
            data={"email": "ingen@example.no", "password": "feil-passord-99", "_csrf_token": token},
        )
    )
    assert await asyncio.to_thread(started.wait, 5)
    health = await asgi_client.get("/healthz")
    answered_during_the_check = not finished.is_set()
    release.set()
    assert health.status_code == 200
    assert answered_during_the_check
    assert (await sign_in).status_code == 422


async def test_registration_hashes_outside_its_transaction(client, monkeypatch):
    """On SQLite an open write transaction holds the database's one write lock: the quarter
    second of hashing must not happen inside it."""
    from backend.tables import Company

    engine = Company._meta.db
    inside: list[bool] = []
    real = users._hasher

    class WatchingHasher(CountingHasher):
        def hash(self, password: str) -> str:
            inside.append(engine.current_transaction.get() is not None)
            return real.hash(password)

    monkeypatch.setattr(users, "_hasher", WatchingHasher(real))
    form = await register(client)
    assert inside == [False]
    assert (await login(client, form["email"])).status_code == 303


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


async def test_two_instances_share_sessions_through_the_database_and_sign_out(tmp_path):
    """Sessions are in the database: one made on an instance works on another (each with its
    own var/ and no Redis), and signing out on either ends it on both."""
    first_app = create_app(
        load_settings({**os.environ, "PORTAL_VAR_DIR": str(tmp_path / "first")}), db_pool=False
    )
    second_app = create_app(
        load_settings({**os.environ, "PORTAL_VAR_DIR": str(tmp_path / "second")}), db_pool=False
    )
    async with (
        AsyncTestClient(app=first_app) as first,
        AsyncTestClient(app=second_app) as second,
    ):
        _, email = await make_company("Delt Økt AS")
        assert (await login(first, email)).status_code == 303
        sid = first.cookies.get("session")
        assert sid
        assert await BrowserSession.exists().where(BrowserSession.id == sid)
        second.cookies.set("session", sid)
        assert "Delt Økt AS" in (await second.get("/portal")).text
        await logout(second)
        assert not await BrowserSession.exists().where(BrowserSession.id == sid)
        first.cookies.set("session", sid)
        assert (await first.get("/portal", follow_redirects=False)).status_code == 303


async def test_a_deactivated_user_is_signed_out_at_the_next_request(client):
    form = await register(client)
    assert (await client.get("/portal")).status_code == 200
    await User.update({User.active: False}).where(User.email == form["email"])
    response = await client.get("/portal", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    # Active again, the same session works again: nothing else was changed.
    await User.update({User.active: True}).where(User.email == form["email"])
    assert (await client.get("/portal")).status_code == 200


async def test_an_expired_session_is_not_accepted(client):
    form = await register(client)
    sid = client.cookies.get("session")
    await BrowserSession.update({BrowserSession.expires_at: int(time.time()) - 1}).where(
        BrowserSession.id == sid
    )
    response = await client.get("/portal", follow_redirects=False)
    assert response.status_code == 303
    assert form["company_name"] not in response.text
    # And the next sign-in forgets it.
    assert (await login(client, form["email"])).status_code == 303
    assert not await BrowserSession.exists().where(BrowserSession.id == sid)


async def test_a_served_portal_checks_five_of_150_wrong_passwords_and_stays_responsive(
    real_hashing_server,
):
    """The attack as it was made (issue 8): 150 wrong passwords at once for one e-mail against
    the served portal. Five are checked, the rest get 429, and /healthz is answered while the
    checks still run (it is not queued behind argon2). Real argon2 parameters, on the server
    and in the password's hash, as in production."""
    _, email = await make_company()
    real_hash = PasswordHasher().hash(PASSWORD)
    await User.update({User.password_hash: real_hash}).where(User.email == email)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=real_hashing_server, timeout=120, limits=limits
    ) as client:
        token = await csrf_token(client)
        data = {"email": email, "password": "feil-passord-99", "_csrf_token": token}
        started = time.perf_counter()
        burst = [asyncio.create_task(client.post("/login", data=data)) for _ in range(150)]
        await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)
        asked = time.perf_counter()
        health = await client.get("/healthz")
        health_ms = (time.perf_counter() - asked) * 1000
        still_running = sum(not task.done() for task in burst)
        responses = await asyncio.gather(*burst)
        burst_ms = (time.perf_counter() - started) * 1000
    statuses = Counter(response.status_code for response in responses)
    print(
        f"\n/healthz answered in {health_ms:.1f} ms during a burst of 150 wrong passwords "
        f"({still_running} still running; whole burst {burst_ms:.0f} ms; {dict(statuses)})"
    )
    assert health.status_code == 200
    assert still_running > 0
    assert statuses[422] <= 5
    assert statuses[429] == 150 - statuses[422]


async def test_a_renewal_never_brings_back_a_session_ended_meanwhile(client):
    """Signed out in another tab while this tab's request renews the session: the renewal
    writes nothing, and the session stays ended."""
    from backend.web.sessions import RotatingSessionBackend, RotatingSessionConfig

    await register(client)
    sid = client.cookies.get("session")
    [row] = await BrowserSession.select().where(BrowserSession.id == sid)
    await BrowserSession.delete().where(BrowserSession.id == sid)
    backend = RotatingSessionBackend(config=RotatingSessionConfig(max_age=3600))
    assert await backend._save(sid, row["data"].encode(), new=False) is False
    assert not await BrowserSession.exists().where(BrowserSession.id == sid)
    assert (await client.get("/portal", follow_redirects=False)).status_code == 303


@pytest.mark.parametrize("cookie", ["%00", "x" * 5000, "%C3%B8", "a" * 63, "A" * 64])
async def test_a_session_cookie_that_is_no_id_of_ours_is_only_ignored(client, cookie):
    client.cookies.set("session", cookie)
    assert (await client.get("/")).status_code == 200
    response = await client.get("/portal", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
