"""`make bench`: what the busiest pages cost, against a floor, on SQLite and PostgreSQL.

Not a test: it prints figures and asserts nothing. For each engine (PostgreSQL with Redis only
when both answer on 127.0.0.1) it seeds a fresh database with a benchmark company
(tests/bench_seed.py), serves the portal in production mode with one uvicorn process and the
floor endpoint (PORTAL_BENCH=1), signs the company's superuser in, and runs
`wrk -t1 -c32 --latency` against each endpoint, in two rounds. The table shows requests/s,
p50, p99, responses that were not 2xx, the share of the floor's requests/s, and the server's
peak RSS so far (`portal serve`: uvicorn, one process).

    BENCH_SECONDS=10 BENCH_ROUNDS=2 BENCH_ENGINES=sqlite,postgresql \
        .venv/bin/python -m tests.bench_pages
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/15"
CONNECTIONS = 32
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
DRAIN_SECONDS = 2
ENDPOINTS = (
    ("floor", "/bench/floor"),
    ("dashboard", "/portal"),
    ("ticket list", "/portal/tickets"),
    ("top-up", "/portal/topup"),
    ("time account", "/portal/account"),
    ("statement", "/portal/usage"),
)


@dataclass(frozen=True)
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    peak_rss_mb: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _seed(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "tests.bench_seed"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    # One process, served as documented for production (README, "Several instances").
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "portal"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not _answers("127.0.0.1", port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the portal did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    return server


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _request(url: str, cookie: str, data: bytes | None = None) -> tuple[int, str, list[str]]:
    """One request without following redirects: (status, body, Set-Cookie headers)."""
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    return status, body.decode(errors="replace"), headers.get_all("Set-Cookie") or []


def _cookies(set_cookie: list[str]) -> dict[str, str]:
    return dict(header.split(";", 1)[0].split("=", 1) for header in set_cookie)


def sign_in(base_url: str, email: str, password: str) -> str:
    """The Cookie header of a signed-in browser (the production cookies are Secure, so no
    client cookie jar would send them over plain HTTP)."""
    _, page, set_cookie = _request(f"{base_url}/login", "")
    jar = _cookies(set_cookie)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert token, "no CSRF token on /login"
    form = {"email": email, "password": password, "_csrf_token": token.group(1)}
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    status, body, set_cookie = _request(
        f"{base_url}/login", cookie, urllib.parse.urlencode(form).encode()
    )
    assert status == 303, f"sign-in failed ({status}): {body[:300]}"
    jar.update(_cookies(set_cookie))
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _percentile_ms(output: str, percent: int) -> float:
    # A line of its own in "Latency Distribution": a thread's "+/- Stdev" (say 71.50%) is not.
    match = re.search(rf"^\s+{percent}%\s+(\S+)\s*$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no {percent}th percentile:\n{output}")
    return _milliseconds(match.group(1))


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def wrk(url: str, cookie: str, seconds: int, pid: int) -> Run:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    output = subprocess.run(
        [*command, "-H", f"Cookie: {cookie}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The requests still in flight when wrk stops (a slow page's) must not land in the next
    # endpoint's figures.
    time.sleep(DRAIN_SECONDS)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Run(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50_ms=_percentile_ms(output, 50),
        p99_ms=_percentile_ms(output, 99),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        peak_rss_mb=_peak_rss_mb(pid),
    )


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def bench_engine(name: str, env: dict[str, str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **env,
        "PORTAL_VAR_DIR": str(work / "var"),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "PORTAL_ENV": "production",
        # Production insists on an https address; only Checkout's return URLs use it.
        "PORTAL_BASE_URL": f"https://127.0.0.1:{port}",
        "PORTAL_BENCH": "1",
        "PORTAL_DEMO": "0",
        # Production mode wants real Stripe settings; no benchmarked page calls Stripe.
        "STRIPE_SECRET_KEY": "sk_test_bench_never_called",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench_never_called",
        "SELLER_NAME": "Benk AS",
        "SELLER_ORG_NUMBER": "923609016",
        "SELLER_ADDRESS": "Benkveien 1, 0150 Oslo",
    }
    print(f"\n## {name}: seeding …", flush=True)
    started = time.monotonic()
    _seed(env)
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
    from tests.bench_seed import BENCH_EMAIL, BENCH_PASSWORD

    server = _serve(env, port, work / "server.log")
    try:
        cookie = sign_in(base_url, BENCH_EMAIL, BENCH_PASSWORD)
        for label, path in ENDPOINTS:
            status, body, _ = _request(base_url + path, cookie)
            assert status == 200, f"{label} answered {status}: {body[:300]}"
            wrk(base_url + path, cookie, 2, server.pid)  # warm up
        rows = []
        for round_number in range(1, ROUNDS + 1):
            runs = {
                label: wrk(base_url + path, cookie, SECONDS, server.pid)
                for label, path in ENDPOINTS
            }
            floor = runs["floor"].requests_per_second
            for label, run in runs.items():
                rows.append((round_number, label, run, run.requests_per_second / floor))
        print(_table(name, rows), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _table(name: str, rows: list[tuple[int, str, Run, float]]) -> str:
    lines = [
        f"{name}, one uvicorn process, wrk -t1 -c{CONNECTIONS} -d{SECONDS}s:",
        "",
        "| round | endpoint | req/s | p50 ms | p99 ms | non-2xx | share of floor | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for round_number, label, run, share in rows:
        lines.append(
            f"| {round_number} | {label} | {run.requests_per_second:,.0f} | {run.p50_ms:.1f} "
            f"| {run.p99_ms:.1f} | {run.non_2xx} | {share:.0%} | {run.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def _fresh_postgres_database() -> str:
    name = f"portal_bench_{secrets.token_hex(4)}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return name


def main() -> None:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    engines = os.environ.get("BENCH_ENGINES", "sqlite,postgresql").split(",")
    if "sqlite" in engines:
        sqlite_dir = Path(tempfile.mkdtemp(prefix="portal-bench-sqlite-"))
        bench_engine("SQLite", {**base, "DATABASE_URL": f"sqlite:///{sqlite_dir}/bench.sqlite"})
    if "postgresql" not in engines:
        return
    if _answers("127.0.0.1", 5432) and _answers("127.0.0.1", 6379):
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        database = _fresh_postgres_database()
        try:
            bench_engine(
                "PostgreSQL + Redis",
                {**base, "DATABASE_URL": f"{PG_SERVER}/{database}", "REDIS_URL": REDIS_URL},
            )
        finally:
            subprocess.run(
                ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", database], check=False
            )
    else:
        print("\nPostgreSQL or Redis does not answer on 127.0.0.1: SQLite only.")


if __name__ == "__main__":
    main()
