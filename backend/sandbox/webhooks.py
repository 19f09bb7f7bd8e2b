"""Webhook delivery the way Stripe does it: signed JSON, in the background, retried.

Each event is POSTed to the configured URL with `Content-Type: application/json` and
`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>`, so
`stripe.Webhook.construct_event(payload, header, secret)` accepts it. Delivery runs in an
asyncio task (kept in `WebhookDispatcher.tasks`), never inside the API request; a non-2xx
answer (redirects included) or a connection error is retried after each of `retry_delays`
seconds (default 0.5, 1, 2, 4, 8, 16, 32: eight attempts). Every attempt is recorded on the
event's `EventRecord.attempts`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
DEFAULT_DELIVERY_TIMEOUT = 10.0
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks) payments-sandbox"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header for `payload` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Attempt:
    number: int  # 1-based, counted per delivery (a resend starts again at 1)
    at: float
    status_code: int | None  # None: no answer (connection error, timeout)
    error: str | None
    succeeded: bool
    resend: bool


@dataclass
class EventRecord:
    """A Stripe event and what happened when the sandbox tried to deliver it."""

    event: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)
    in_flight: int = 0
    delivered: bool = False

    @property
    def id(self) -> str:
        return self.event["id"]

    def snapshot(self) -> dict[str, Any]:
        """The event as the API shows it, with Stripe's `pending_webhooks` count."""
        pending = 1 if self.in_flight or not self.delivered else 0
        return {**self.event, "pending_webhooks": pending}


class WebhookDispatcher:
    def __init__(
        self,
        *,
        url: str,
        secret: str,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.secret = secret
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.clock = clock
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def deliver(self, record: EventRecord, *, resend: bool = False) -> None:
        """Start delivering `record` in the background (needs a running event loop)."""
        if not self.enabled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning("no running event loop: event %s is not delivered", record.id)
            return
        record.in_flight += 1
        task = loop.create_task(self._deliver(record, resend), name=f"webhook {record.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, record: EventRecord, resend: bool) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
                delays = (*self.retry_delays, None)
                for number, delay in enumerate(delays, start=1):
                    if await self._attempt(client, record, number, resend):
                        record.delivered = True
                        return
                    if delay is None:
                        logger.warning("giving up on event %s after %d attempts", record.id, number)
                        return
                    await asyncio.sleep(delay)
        finally:
            record.in_flight -= 1

    async def _attempt(
        self, client: httpx.AsyncClient, record: EventRecord, number: int, resend: bool
    ) -> bool:
        payload = json.dumps(record.snapshot(), indent=2, ensure_ascii=False).encode()
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(payload, self.secret, timestamp),
            "User-Agent": USER_AGENT,
        }
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(self.url, content=payload, headers=headers)
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        succeeded = status_code is not None and 200 <= status_code < 300
        record.attempts.append(
            Attempt(
                number=number,
                at=self.clock(),
                status_code=status_code,
                error=error,
                succeeded=succeeded,
                resend=resend,
            )
        )
        if not succeeded:
            logger.info(
                "webhook %s (%s) attempt %d failed: %s",
                record.id,
                record.event["type"],
                number,
                error or status_code,
            )
        return succeeded

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until every delivery under way has finished."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)

    async def aclose(self) -> None:
        """Cancel deliveries still under way (e.g. at shutdown)."""
        tasks = set(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
