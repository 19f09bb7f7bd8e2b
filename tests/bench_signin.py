"""Sign-in burst figures for the closing notes (not a test: it prints, it asserts nothing).

    .venv/bin/python -m tests.bench_signin          # a fresh SQLite file
    createdb -h 127.0.0.1 -U postgres bench
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python -m tests.bench_signin

Serves the portal with `portal serve` (as `make run` does), then ROUNDS times: 150 wrong
passwords at once for one e-mail, with /healthz asked again and again while they run. Prints
how many passwords were checked (422) and refused (429), and /healthz's latency.
With `--control` the address is throttled before each burst, so no password is checked at
all: what is left of /healthz's latency then is the 150 requests themselves, not argon2.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ATTEMPTS = 150
ROUNDS = 5
ROOT = Path(__file__).resolve().parent.parent


def _setup_database() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    os.environ["DATABASE_URL"] = url
    os.environ.pop("FORWARDED_ALLOW_IPS", None)
    return url


async def _prepare() -> str:
    from backend.cli import migrate
    from tests.support import make_company

    await migrate()
    _, email = await make_company("Benk AS")
    return email


async def _clear_counters(*, block: bool) -> None:
    from backend.services.users import LoginThrottle
    from backend.tables import SignInCounter

    await SignInCounter.delete(force=True)
    if block:
        throttle = LoginThrottle()
        for attempt in range(throttle.limit):
            await throttle.reserve(f"kontroll{attempt}@example.no", "127.0.0.1")


def _serve(port: int) -> subprocess.Popen:
    env = {**os.environ, "PORT": str(port), "PORTAL_VAR_DIR": tempfile.mkdtemp()}
    portal = Path(sys.executable).with_name("portal")
    return subprocess.Popen(
        [str(portal), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _round(base_url: str, email: str) -> tuple[Counter, list[float], float]:
    import httpx

    from tests.support import csrf_token

    limits = httpx.Limits(max_connections=ATTEMPTS + 10, max_keepalive_connections=ATTEMPTS + 10)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client,
        httpx.AsyncClient(base_url=base_url, timeout=120) as probe,
    ):
        token = await csrf_token(client)
        await probe.get("/healthz")  # an open connection, as a load balancer's would be
        data = {"email": email, "password": "feil-passord-99", "_csrf_token": token}
        started = time.perf_counter()
        burst = [asyncio.create_task(client.post("/login", data=data)) for _ in range(ATTEMPTS)]
        latencies: list[float] = []
        while not all(task.done() for task in burst):
            asked = time.perf_counter()
            await probe.get("/healthz")
            latencies.append((time.perf_counter() - asked) * 1000)
            await asyncio.sleep(0.02)
        responses = await asyncio.gather(*burst)
        return (
            Counter(r.status_code for r in responses),
            latencies,
            (time.perf_counter() - started) * 1000,
        )


async def _main() -> None:
    import httpx

    url = _setup_database()
    email = await _prepare()
    port = 8765
    server = _serve(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base_url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        quiet = []
        async with httpx.AsyncClient(base_url=base_url) as probe:
            for _ in range(20):
                asked = time.perf_counter()
                await probe.get("/healthz")
                quiet.append((time.perf_counter() - asked) * 1000)
        print(f"{url.split(':')[0]}: /healthz when idle: median {statistics.median(quiet):.1f} ms")
        for number in range(1, ROUNDS + 1):
            await _clear_counters(block="--control" in sys.argv)
            statuses, latencies, burst_ms = await _round(base_url, email)
            print(
                f"round {number}: {dict(statuses)} in {burst_ms:.0f} ms; /healthz during it "
                f"({len(latencies)} asked): median {statistics.median(latencies):.1f} ms, "
                f"max {max(latencies):.1f} ms"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(_main())
