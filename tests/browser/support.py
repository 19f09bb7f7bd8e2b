"""Helpers the browser journeys share."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine, Iterable
from typing import Any


def run_in_new_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Runs a coroutine to the end in a fresh event loop on a thread of its own: Playwright's
    sync API (and pytest-asyncio) own the loop of the test's thread."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="journey-setup")
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "setting up the journey's data did not finish"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def assert_no_console_errors(errors: list[str], expected: Iterable[re.Pattern[str]] = ()) -> None:
    """No console errors (a CSP violation, a script error, a failed load) but the expected."""
    patterns = list(expected)
    unexpected = [e for e in errors if not any(p.match(e) for p in patterns)]
    assert not unexpected, "\n".join(unexpected)
