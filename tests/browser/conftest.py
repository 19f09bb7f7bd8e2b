"""Debian's Chromium for the browser journeys; the server is the root conftest's `live_server`
(uvicorn on this run's fresh database)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "var" / "screenshots"
# axe-core, pinned in frontend/package.json and installed by `make setup`.
AXE_SCRIPT = REPO_ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_TIMEOUT_MS = 10_000


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One Chromium for all the browser tests; each test gets a fresh context (no cookies).

    Package scope, which is once per run: Playwright's sync API marks its event loop as
    running on this thread while it is open, which would break the async tests pytest-asyncio
    runs after this package, so it stops when the package's last test is done. (The root
    conftest's per-test setup runs its coroutines on a thread of their own meanwhile.)"""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions the test's page reported (CSP violations too)."""
    return []


@contextmanager
def _page_in_new_context(
    browser, live_server: str, console_errors: list[str], **context_options
) -> Iterator:
    """A page in a fresh browser context (no cookies) that reports into `console_errors`."""
    context = browser.new_context(base_url=live_server, locale="nb-NO", **context_options)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    new_page = context.new_page()

    def on_console(message) -> None:
        if message.type == "error":
            location = message.location.get("url", "")
            console_errors.append(f"console: {message.text} ({location} on {new_page.url})")

    new_page.on("console", on_console)
    new_page.on("pageerror", lambda error: console_errors.append(f"pageerror: {error}"))
    try:
        yield new_page
    finally:
        context.close()


@pytest.fixture
def page(browser, live_server: str, console_errors: list[str]) -> Iterator:
    """A page in a fresh browser context (no cookies) that reports into `console_errors`."""
    with _page_in_new_context(browser, live_server, console_errors) as new_page:
        yield new_page


@pytest.fixture
def staff_page(browser, live_server: str, console_errors: list[str]) -> Iterator:
    """A second browser context (its own cookies): a technician, next to the customer's `page`."""
    with _page_in_new_context(browser, live_server, console_errors) as new_page:
        yield new_page


@pytest.fixture
def axe_page(browser, live_server: str, console_errors: list[str]) -> Iterator:
    """Like `page`, but with the Content-Security-Policy switched off, for the axe-core checks.

    `page.add_script_tag(path=...)` reads the file and injects its text as an *inline* script,
    which the portal's CSP (`default-src 'self'`, no 'unsafe-inline') blocks, so axe would never
    load. Only these accessibility checks bypass it; the CSP itself is tested in
    tests/test_security.py and by the console-error check of test_journey.py.

    Reduced motion makes Pico switch its colour transitions off, so axe's contrast check never
    measures a colour half-way through a transition (after a click or a colour-scheme change).
    """
    if not AXE_SCRIPT.is_file():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `make setup` (npm ci in frontend/)")
    with _page_in_new_context(
        browser, live_server, console_errors, bypass_csp=True, reduced_motion="reduce"
    ) as new_page:
        yield new_page


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
