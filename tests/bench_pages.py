"""`make bench`: what the busiest pages cost for a small and a large company, on SQLite and
PostgreSQL.

Not a test: it prints figures and asserts nothing. For each engine (PostgreSQL with Redis only
when both answer on 127.0.0.1) it seeds a fresh database with two companies of five years'
history (tests/bench_seed.py: 100 tickets, and 100 000 tickets with about 500 000 ledger
entries), serves the portal in production mode with one uvicorn process and the floor
endpoint (PORTAL_BENCH=1), and signs each company's superuser in. First, on the fresh server,
it downloads the large company's whole five-year CSV while sampling the server's resident
memory (VmRSS from /proc, every 10 ms): the peak above what it held before is what a long
export costs. Then it runs `wrk -t1 --latency` against each endpoint, small then large, in
BENCH_ROUNDS rounds, -c32; the CSV of the last 12 months (a download of seconds for the
large company, whose figure to compare is rows per second) by one client downloading it again
and again.

    BENCH_SECONDS=5 BENCH_ROUNDS=2 BENCH_ENGINES=sqlite,postgresql \
        .venv/bin/python -m tests.bench_pages

BENCH_COMPARE=/path/to/another/checkout serves that tree as well (with this checkout's
virtualenv), on the same database once this checkout has migrated it, and benches its pages
(not its CSV) the same way, in the same run: before and after a change, side by side.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
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
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
COMPARE = os.environ.get("BENCH_COMPARE", "")
DRAIN_SECONDS = 2
CSV_12_MONTHS = "/portal/usage.csv?period=last_12_months"
CSV_EVERYTHING = "/portal/usage.csv?period=custom&from=2000-01-01"
FLOOR = "/bench/floor"
PAGES = (
    ("dashboard", "/portal"),
    ("ticket list", "/portal/tickets"),
    ("top-up", "/portal/topup"),
    ("time account", "/portal/account"),
    ("statement", "/portal/usage"),
)
CSV_LABEL = "statement CSV, 12 months"
# The large company's tickets (tests/bench_seed.py's LARGE_TICKETS unless set): fewer while
# developing.
LARGE_TICKETS = [os.environ["BENCH_LARGE_TICKETS"]] if os.environ.get("BENCH_LARGE_TICKETS") else []


@dataclass(frozen=True)
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


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
        [sys.executable, "-m", "tests.bench_seed", *LARGE_TICKETS],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _serve(env: dict[str, str], port: int, log: Path, tree: Path = ROOT) -> subprocess.Popen:
    # One process, served as documented for production (README, "Several instances"); another
    # tree's code comes first on the path (this virtualenv installs this checkout).
    if tree != ROOT:
        env = {**env, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "portal"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tree,
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


def wrk(url: str, cookie: str, seconds: int) -> Run:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "60s", "--latency"]
    output = subprocess.run(
        [*command, "-H", f"Cookie: {cookie}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Run(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50_ms=_percentile_ms(output, 50),
        p99_ms=_percentile_ms(output, 99),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def downloads(url: str, cookie: str, seconds: int) -> Run:
    """One client downloading `url` again and again, each response read to its end, for
    `seconds` and at least twice (a large CSV takes longer than a wrk run)."""
    times, failed = [], 0
    started = time.monotonic()
    while time.monotonic() - started < seconds or len(times) < 2:
        began = time.monotonic()
        request = urllib.request.Request(url, headers={"Cookie": cookie})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                while response.read(1 << 16):
                    pass
        except urllib.error.HTTPError:
            failed += 1
        times.append(time.monotonic() - began)
    times.sort()
    return Run(
        requests_per_second=len(times) / (time.monotonic() - started),
        p50_ms=times[len(times) // 2] * 1000,
        p99_ms=times[min(len(times) - 1, len(times) * 99 // 100)] * 1000,
        non_2xx=failed,
    )


def drain(pid: int) -> None:
    """Wait until the server is idle: the requests still in flight when wrk stops (a slow
    page's, which may take many seconds) must not land in the next endpoint's figures."""
    ticks = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + 300
    used = _cpu_seconds(pid, ticks)
    while time.monotonic() < deadline:
        time.sleep(DRAIN_SECONDS / 4)
        now = _cpu_seconds(pid, ticks)
        if now - used < DRAIN_SECONDS / 40:  # under 10 % of a core
            return
        used = now


def _cpu_seconds(pid: int, ticks: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def _production_env(env: dict[str, str], work: Path, port: int) -> dict[str, str]:
    return {
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
        # Production mode wants an SMTP server; the bench queues no mail.
        "SMTP_URL": "smtp://127.0.0.1:1",
        "MAIL_FROM": "support@bench.invalid",
    }


@dataclass(frozen=True)
class Served:
    name: str
    base_url: str
    process: subprocess.Popen
    cookies: dict[str, str]  # "small", "large": a signed-in superuser's Cookie header


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def csv_memory(served: Served) -> str:
    """The large company's whole CSV, read as it arrives, while the server's resident memory
    is sampled: rows, size, time, and the server's memory before and at its peak."""
    pid = served.process.pid
    before = _rss_mb(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    size = lines = 0
    request = urllib.request.Request(
        served.base_url + CSV_EVERYTHING, headers={"Cookie": served.cookies["large"]}
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            while chunk := response.read(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\r\n")
    finally:
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    return (
        f"The large company's whole CSV (5 years, {lines - 1:,} rows, {size / 2**20:.0f} MB) in"
        f" {seconds:.1f} s ({(lines - 1) / seconds:,.0f} rows/s): the server's resident memory"
        f" {before:.0f} MB before, {peak:.0f} MB at its peak during the download"
        f" (+{peak - before:.0f} MB)."
    )


def _csv_rows(served: Served, size: str) -> int:
    status, body, _ = _request(served.base_url + CSV_12_MONTHS, served.cookies[size])
    assert status == 200, f"the CSV answered {status}"
    return body.count("\r\n") - 1


def bench_server(served: Served, *, with_csv: bool) -> list[tuple[str, dict[str, Run]]]:
    """Each endpoint for the small and the large company, every round: (label, runs by size)."""
    endpoints = [(label, path, False) for label, path in PAGES]
    if with_csv:
        endpoints.append((CSV_LABEL, CSV_12_MONTHS, True))
    for label, path, _ in endpoints:
        for size in ("small", "large"):
            status, body, _ = _request(served.base_url + path, served.cookies[size])
            assert status == 200, f"{served.name}: {label} ({size}) answered {status}: {body[:300]}"
    pid = served.process.pid

    def measure(path: str, cookie: str, seconds: int, one_client: bool = False) -> Run:
        if one_client:
            run = downloads(served.base_url + path, cookie, seconds)
        else:
            run = wrk(served.base_url + path, cookie, seconds)
        drain(pid)
        return run

    measure(FLOOR, "", 2)  # warm up
    results = []
    for _ in range(ROUNDS):
        floor = measure(FLOOR, "", SECONDS)
        results.append(("floor", {"small": floor, "large": floor}))
        for label, path, one_client in endpoints:
            runs = {}
            for size in ("small", "large"):
                cookie = served.cookies[size]
                if not one_client:
                    measure(path, cookie, 1)  # warm up
                runs[size] = measure(path, cookie, SECONDS, one_client)
            results.append((label, runs))
    return results


def _start(name: str, env: dict[str, str], work: Path, tree: Path = ROOT) -> Served:
    from tests.bench_seed import BENCH_PASSWORD, LARGE_EMAIL, SMALL_EMAIL

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = _serve(_production_env(env, work, port), port, work / f"{name}.log", tree)
    cookies = {
        "small": sign_in(base_url, SMALL_EMAIL, BENCH_PASSWORD),
        "large": sign_in(base_url, LARGE_EMAIL, BENCH_PASSWORD),
    }
    return Served(name, base_url, process, cookies)


def _stop(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # still answering a slow page
        served.process.kill()
        served.process.wait(timeout=10)


def bench_engine(name: str, env: dict[str, str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    print(f"\n## {name}: seeding …", flush=True)
    started = time.monotonic()
    _seed({**env, "PORTAL_VAR_DIR": str(work / "var")})
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)

    served = _start("this checkout", env, work)
    try:
        print(csv_memory(served), flush=True)
        rows = {size: _csv_rows(served, size) for size in ("small", "large")}
        results = bench_server(served, with_csv=True)
    finally:
        _stop(served)
    print(_table(f"{name}, this checkout", results, rows), flush=True)
    if COMPARE:
        other = _start("compared", env, work, Path(COMPARE).resolve())
        try:
            compared = bench_server(other, with_csv=False)
        finally:
            _stop(other)
        print(_table(f"{name}, {COMPARE}", compared, {}), flush=True)


def _ratio(large: float, small: float) -> str:
    return f"{large / small:.2f}" if small else "–"


def _table(title: str, results: list[tuple[str, dict[str, Run]]], csv_rows: dict[str, int]) -> str:
    lines = [
        f"{title}: one uvicorn process, wrk -t1 -c{CONNECTIONS} -d{SECONDS}s (the CSV: one"
        f" client downloading it again and again for {SECONDS} s, at least twice),"
        f" {ROUNDS} round(s):",
        "",
        "| endpoint | small req/s | large req/s | large/small | small p99 ms | large p99 ms"
        " | share of floor, large | non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    floor = 0.0
    for label, runs in results:
        small, large = runs["small"], runs["large"]
        if label == "floor":
            floor = small.requests_per_second
            lines.append(
                f"| floor | {floor:,.0f} | | | {small.p99_ms:.1f} | | 100% | {small.non_2xx} |"
            )
            continue
        lines.append(
            f"| {label} | {small.requests_per_second:,.1f} | {large.requests_per_second:,.1f}"
            f" | {_ratio(large.requests_per_second, small.requests_per_second)}"
            f" | {small.p99_ms:.1f} | {large.p99_ms:.1f}"
            f" | {large.requests_per_second / floor:.0%} | {small.non_2xx + large.non_2xx} |"
        )
        if label == CSV_LABEL and csv_rows:
            per_row = {k: runs[k].requests_per_second * csv_rows[k] for k in ("small", "large")}
            lines.append(
                f"| … rows/s ({csv_rows['small']:,} and {csv_rows['large']:,} rows)"
                f" | {per_row['small']:,.0f} | {per_row['large']:,.0f}"
                f" | {_ratio(per_row['large'], per_row['small'])} | | | | |"
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
