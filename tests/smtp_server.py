"""A real SMTP server on loopback (aiosmtpd) that keeps every mail it accepts, for the tests.

One runs for the whole test run (tests/conftest.py starts it and points SMTP_URL at it), so
every sender on the run's database — a test's own, and those of the portals the tests serve —
delivers to it, and a mail sent twice by anyone would show here twice."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller


class MailCollector:
    """What the server was sent, by recipient; and failures to answer, planned by recipient."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[list[str], EmailMessage]] = []
        self._failures: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # DATA answered with 451, by recipient

    def fail_next(self, recipient: str, times: int) -> None:
        """Answer the next `times` deliveries to `recipient` with 451 (try again later)."""
        with self._lock:
            self._failures[recipient.lower()] += times

    def messages_to(self, recipient: str) -> list[EmailMessage]:
        with self._lock:
            return [m for to, m in self._messages if recipient.lower() in to]

    async def wait_for(
        self, recipient: str, count: int = 1, seconds: float = 15
    ) -> list[EmailMessage]:
        """The mails to `recipient` once `count` have arrived (bounded wait)."""
        deadline = time.monotonic() + seconds
        while len(found := self.messages_to(recipient)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} mail(s) to {recipient} expected, {len(found)} came")
            await asyncio.sleep(0.05)
        return found

    # aiosmtpd's handler hook
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipients = [address.lower() for address in envelope.rcpt_tos]
        with self._lock:
            failing = [r for r in recipients if self._failures[r] > 0]
            if failing:
                for recipient in failing:
                    self._failures[recipient] -= 1
                    self.refused[recipient] += 1
                return "451 4.3.0 Try again later"
            message = BytesParser(policy=default_policy).parsebytes(envelope.content)
            self._messages.append((recipients, message))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start() -> tuple[Controller, MailCollector, str]:
    """The server, its collector and the SMTP_URL that reaches it."""
    collector = MailCollector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, collector, f"smtp://127.0.0.1:{port}"
