"""The mail outbox (issue 11): never lost, never twice.

A mail is written to the outbox in the same transaction as its cause (`queue`), so it exists
if and only if the cause committed, and its key (the cause: "receipt:123") lets the same cause
write it once. A sender (`send_due`: the app's background task, or `portal send-mail`) sends
it afterwards: to SMTP_URL with aiosmtplib or, without it (development), as an .eml file under
MAIL_DIR, shown at /dev/mail. A failure is tried again later, each wait twice the last.

Several senders (app instances, the command) send each mail once: a sender claims one due mail
at a time in a write transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so senders pass each
other's rows by; SQLite: one write transaction at a time), and the claim moves the mail's next
attempt past the time a send can take (a lease): a sender that dies mid-send leaves the mail due
again later, not lost. (SMTP itself cannot promise more than that: a server that took the mail
but whose answer was lost gets it again, with the same Message-ID.)
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
from piccolo.engine.postgres import PostgresEngine

from backend.config import SMTP_SCHEMES, Seller, Settings, load_settings
from backend.db import write_transaction, writing
from backend.i18n import DEFAULT_LANGUAGE, speaking
from backend.services import clock
from backend.services.errors import NotFound
from backend.tables import MailStatus, OutboxMail

logger = logging.getLogger("portal.outbox")

POLL_SECONDS = 5  # how often the app's sender looks for due mail
CLAIM_LEASE = datetime.timedelta(minutes=10)  # longer than one send can take (SMTP_TIMEOUT)
SMTP_TIMEOUT = 30  # seconds, per SMTP command
FIRST_RETRY = datetime.timedelta(minutes=1)
LONGEST_RETRY = datetime.timedelta(hours=2)
MAX_ATTEMPTS = 16  # about a day of retries, then the mail is marked failed
STARTTLS_PORT = 587  # submission: smtp:// to this port must upgrade with STARTTLS


@dataclass(frozen=True)
class Letterhead:
    """What every mail names: the reseller, and the portal's address."""

    seller: Seller
    portal_url: str


_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """The settings mails are written with (create_app and the `portal` command set them)."""
    global _settings
    _settings = settings


def current_settings() -> Settings:
    """The settings `configure` was given (else the environment's)."""
    return _settings or load_settings()


def letterhead() -> Letterhead:
    settings = current_settings()
    return Letterhead(seller=settings.seller, portal_url=settings.base_url)


# --- writing a mail, in its cause's transaction ----------------------------------------------


async def queue(
    to: str,
    template: str,
    context: Mapping[str, Any],
    key: str,
    *,
    language: str = DEFAULT_LANGUAGE,
    headers: Mapping[str, str] | None = None,
    message_id: str | None = None,
    seller: Seller | None = None,
) -> bool:
    """Write the mail `template` to `to` in `language`, inside the cause's transaction, so it
    is sent if and only if the cause commits. `key` names the cause: a key already in the
    outbox writes nothing (False), however often or concurrently the cause runs.

    frontend/templates/mail/<template>.txt sets `subject` and is the text part, <template>.html
    the HTML part; both see `context` and the letterhead (`seller`, `portal_url`).
    `message_id` (from `new_message_id`) when the caller keeps it, to thread replies under it.
    `seller` (`business.current().seller`) when the caller writes many mails at once: read once
    for all of them."""
    # The seller as an admin saved it (business.py reads the configuration through this
    # module, hence the import here).
    from backend.services import business

    seller = seller or (await business.current()).seller
    subject, text, html = render(
        template, {**context, "seller": seller, "portal_url": letterhead().portal_url}, language
    )
    inserted = (
        await OutboxMail.insert(
            OutboxMail(
                key=key,
                template=template,
                language=language,
                recipient=to,
                subject=subject,
                text_body=text,
                html_body=html,
                message_id=message_id or new_message_id(),
                headers=json.dumps(dict(headers or {})),
                next_attempt_at=clock.now(),
            )
        )
        .on_conflict(target=OutboxMail.key, action="DO NOTHING")
        .returning(OutboxMail.id)
    )
    return bool(inserted)


def new_message_id() -> str:
    """A Message-ID of ours, in the portal's domain."""
    return make_msgid(domain=urlsplit(letterhead().portal_url).hostname)


def render(template: str, context: Mapping[str, Any], language: str) -> tuple[str, str, str]:
    """(subject, text, html) of a mail template in `language`."""
    # Imported here: the templates' filters come from modules that import the services.
    from backend.web.templating import mail_environment

    environment = mail_environment(language)
    with speaking(language):
        text = environment.get_template(f"mail/{template}.txt").make_module(dict(context))
        # One line, whatever the template's whitespace or the context's text holds.
        subject = " ".join(str(text.subject).split())[:300]
        html = environment.get_template(f"mail/{template}.html").render(
            {**context, "subject": subject}
        )
    return subject, str(text).strip() + "\n", html


# --- sending -----------------------------------------------------------------------------------


async def run_sender(settings: Settings) -> None:
    """The app's background task: send what is due, every POLL_SECONDS."""
    while True:
        try:
            await send_due(settings)
        except Exception:
            logger.exception("mail sender failed")
        await asyncio.sleep(POLL_SECONDS)


async def send_due(settings: Settings, now: datetime.datetime | None = None) -> int:
    """Send every mail due at `now` (default: the clock's; tests pass a later time rather than
    wait); returns how many went out. A mail that fails waits from `now` for its next
    attempt, so one call tries each mail at most once."""
    now = now or clock.now()
    if not await OutboxMail.exists().where(_due(now)):
        return 0  # the usual answer, without taking SQLite's write lock
    sent = 0
    while (mail := await _claim(now)) is not None:
        try:
            await _deliver(_message(mail, settings), mail, settings)
        except Exception as error:
            await _failed(mail, error, now)
            continue
        async with writing(OutboxMail._meta.db):
            await OutboxMail.update(
                {OutboxMail.status: MailStatus.sent.value, OutboxMail.sent_at: clock.now()}
            ).where(OutboxMail.id == mail.id)
        sent += 1
    return sent


def _due(now: datetime.datetime) -> Any:
    return (OutboxMail.status == MailStatus.pending.value) & (OutboxMail.next_attempt_at <= now)


async def _claim(now: datetime.datetime) -> OutboxMail | None:
    """One due mail, leased to this sender (see the module's docstring)."""
    engine = OutboxMail._meta.db
    async with write_transaction(engine):
        query = (
            OutboxMail.select(OutboxMail.id)
            .where(_due(now))
            .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        )
        if isinstance(engine, PostgresEngine):
            query = query.lock_rows(skip_locked=True)
        row = await query.first()
        if row is None:
            return None
        await OutboxMail.update(
            {
                OutboxMail.next_attempt_at: now + CLAIM_LEASE,
                OutboxMail.attempts: OutboxMail.attempts + 1,
            }
        ).where(OutboxMail.id == row["id"])
        return await OutboxMail.objects().get(OutboxMail.id == row["id"])


def retry_after(attempts: int) -> datetime.timedelta:
    """How long a mail waits after its `attempts`-th failed attempt."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


async def _failed(mail: OutboxMail, error: Exception, now: datetime.datetime) -> None:
    gives_up = _refused_for_good(error) or mail.attempts >= MAX_ATTEMPTS
    logger.warning(
        "mail %s (%s) to %s, attempt %s, %s: %s",
        mail.id,
        mail.key,
        mail.recipient,
        mail.attempts,
        "given up" if gives_up else "will try again",
        error,
    )
    async with writing(OutboxMail._meta.db):
        await OutboxMail.update(
            {
                OutboxMail.status: (MailStatus.failed if gives_up else MailStatus.pending).value,
                OutboxMail.next_attempt_at: now + retry_after(mail.attempts),
                OutboxMail.last_error: f"{type(error).__name__}: {error}"[:500],
            }
        ).where(OutboxMail.id == mail.id)


def _refused_for_good(error: Exception) -> bool:
    """The server refused this recipient or this message with a permanent (5xx) answer: trying
    again would be refused again. A refused sign-in or sender is the portal's configuration,
    not the mail's: those are tried again (once the configuration is fixed, they go out)."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in error.recipients)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return error.code >= 500
    return False


def _message(mail: OutboxMail, settings: Settings) -> EmailMessage:
    message = EmailMessage(policy=default_policy)
    message["From"] = sender(settings)
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.created_at)
    message["Message-ID"] = mail.message_id
    for name, value in json.loads(mail.headers).items():
        message[name] = value
    message.set_content(mail.text_body)
    message.add_alternative(mail.html_body, subtype="html")
    return message


def sender(settings: Settings) -> Address:
    """MAIL_FROM, named as the seller when it names no one itself."""
    name, address = parseaddr(settings.mail_from)
    return Address(display_name=name or settings.seller.name, addr_spec=address)


async def _deliver(message: EmailMessage, mail: OutboxMail, settings: Settings) -> None:
    if settings.smtp_url is None:
        _write_eml(message, mail, settings.mail_dir)
        return
    await aiosmtplib.send(
        message,
        sender=sender(settings).addr_spec,
        recipients=[mail.recipient],
        **smtp_options(settings.smtp_url),
    )


def smtp_options(url: str) -> dict[str, Any]:
    """aiosmtplib's connection options for SMTP_URL: smtps:// is TLS from the start (port 465
    by default); smtp:// to port 587 must upgrade with STARTTLS; smtp:// to any other port
    (a relay on the same machine or network, say) speaks plain SMTP."""
    parts = urlsplit(url)
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or SMTP_SCHEMES[parts.scheme]
    return {
        "hostname": parts.hostname,
        "port": port,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_tls": implicit_tls,
        "start_tls": not implicit_tls and port == STARTTLS_PORT,
        "timeout": SMTP_TIMEOUT,
    }


# --- development: mails as files, shown at /dev/mail -----------------------------------------

DEV_MAIL_LIST = 200  # the newest shown


def _write_eml(message: EmailMessage, mail: OutboxMail, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{mail.created_at:%Y%m%d-%H%M%S}-{mail.id:08d}.eml"
    # Whole or not at all: /dev/mail never shows half a file.
    partial = directory / f".{name}.part"
    partial.write_bytes(message.as_bytes())
    partial.replace(directory / name)


@dataclass(frozen=True)
class StoredMail:
    """A mail the development sender wrote to a file."""

    name: str
    message: EmailMessage

    def header(self, name: str) -> str:
        return str(self.message.get(name, ""))

    def part(self, subtype: str) -> str:
        body = self.message.get_body((subtype,))
        return body.get_content() if body is not None else ""


def stored_mails(directory: Path) -> list[StoredMail]:
    """The newest mails written under `directory`, newest first."""
    names = sorted((path.name for path in directory.glob("*.eml")), reverse=True)
    return [_read(directory / name) for name in names[:DEV_MAIL_LIST]]


def stored_mail(directory: Path, name: str) -> StoredMail:
    """One of them by its file name; only a name the directory lists (no path of the
    visitor's making is ever opened)."""
    if name not in {path.name for path in directory.glob("*.eml")}:
        raise NotFound("no such mail")
    return _read(directory / name)


def _read(path: Path) -> StoredMail:
    with path.open("rb") as file:
        message = BytesParser(policy=default_policy).parse(file)
    return StoredMail(name=path.name, message=message)  # type: ignore[arg-type]
