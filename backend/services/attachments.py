"""Files on tickets (issue 11): screenshots, logs, an `.ipt` that crashes.

Rules, each in one function here:
- Size: at most MAX_FILE_BYTES a file, MAX_MESSAGE_BYTES and MAX_FILES a message (`check`).
- Storage: the bytes under ATTACHMENT_DIR with a random name (secrets), never in the
  database; the row keeps the sender's name (sanitised, for display only), size, the type
  detected from the bytes, sha256 and the stored name (`store`).
- Order: each file is written (and flushed to disk) before its row is inserted, in the
  caller's transaction. A transaction that fails afterwards leaves an orphan file, never a row
  without its file; `store` removes the files it wrote when its own inserts fail.
- Who reads: the ticket's company (superuser and members) and staff; an internal note's
  files only staff; anything else is "no such file" (`get_for`).
- Shown inline: only a PNG or JPEG as its bytes say (`inline_type`), never by its name or
  the type a browser claimed; everything else is served as application/octet-stream.

`store(files, ticket_id=..., message_id=...)` and `check(files)` take plain data
(`IncomingFile`), for the web forms and for mail alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from backend.config import Settings, load_settings
from backend.i18n import N_
from backend.services import policy
from backend.services.errors import NotFound, ValidationFailed
from backend.tables import Attachment, Ticket, TicketMessage, User

MB = 1024 * 1024
MAX_FILE_BYTES = 10 * MB
MAX_MESSAGE_BYTES = 25 * MB
MAX_FILES = 10
# What Litestar reads of a request to a route that takes files (`request_max_body_size`):
# a message's files with room for its text and the multipart framing, and a little beyond,
# so a selection somewhat over MAX_MESSAGE_BYTES is still read and refused with the form kept
# (larger bodies are refused unread with 413; the browser's own check stops them first).
REQUEST_BODY_LIMIT = MAX_MESSAGE_BYTES + 5 * MB
FILENAME_MAX = 255
# The form field the files come in.
FIELD = "files"

# The limits in words: keep them with MAX_FILE_BYTES, MAX_MESSAGE_BYTES and MAX_FILES.
FILE_TOO_LARGE = N_("En av filene er større enn 10 MB. En fil kan være på høyst 10 MB.")
MESSAGE_TOO_LARGE = N_("Vedleggene er til sammen for store. En melding kan ha høyst 25 MB.")
TOO_MANY_FILES = N_("Du kan legge ved høyst 10 filer i én melding.")
EMPTY_FILE = N_("En av filene er tom.")
# A browser cannot put chosen files back into a form that comes back with other messages.
CHOOSE_AGAIN = N_("Vedleggene ble ikke lagret. Velg dem på nytt.")

PNG = "image/png"
JPEG = "image/jpeg"
OCTET_STREAM = "application/octet-stream"
# Magic numbers of what is worth naming; only PNG and JPEG are ever shown inline.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)
INLINE_TYPES = frozenset({PNG, JPEG})

logger = logging.getLogger("portal")
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Where files are kept (create_app and the `portal` command set it)."""
    global _settings
    _settings = settings


def directory() -> Path:
    return (_settings or load_settings()).attachment_dir


@dataclass(frozen=True)
class IncomingFile:
    """A file as it came in (a form's upload, a mail's part): the sender's name and type
    are claims, kept only for display."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class AttachmentRow:
    """An attachment as a thread lists it."""

    id: int
    message: int | None
    filename: str
    size: int
    content_type: str

    @property
    def inline(self) -> bool:
        return self.content_type in INLINE_TYPES


# --- what a file is ------------------------------------------------------------------------


def detect_type(data: bytes) -> str:
    """The content type the bytes show (magic numbers), else application/octet-stream. A PNG
    must also have its header chunk where PNG puts it."""
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            if content_type == PNG and data[12:16] != b"IHDR":
                return OCTET_STREAM
            return content_type
    return OCTET_STREAM


def inline_type(content_type: str) -> str | None:
    """The type to serve a file inline as: only a verified PNG or JPEG, else None."""
    return content_type if content_type in INLINE_TYPES else None


def display_name(filename: str) -> str:
    """The sender's file name, safe to show and to name a download: no directories (either
    slash), no control or format characters, NFC, at most FILENAME_MAX characters with the
    extension kept; never empty, never only dots."""
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    name = name.lstrip(".").strip()
    if not name:
        return "vedlegg"
    if len(name) > FILENAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = f"{stem[: FILENAME_MAX - len(extension) - 1]}.{extension}"
        else:
            name = name[:FILENAME_MAX]
    return name


def _ascii_or_underscore(c: str) -> str:
    return c if c.isascii() and c.isprintable() and c not in '"\\%;,' else "_"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266 with RFC 5987's `filename*` for the real name (percent-encoded UTF-8, so no
    quote, semicolon or line break reaches the header) and a plain ASCII `filename` for old
    clients."""
    name = display_name(filename)
    fallback = "".join(_ascii_or_underscore(c) for c in name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- the size rules ------------------------------------------------------------------------


def problems(files: Sequence[IncomingFile]) -> dict[str, str]:
    """What is wrong with a message's files, as the form's message for its `files` field
    (empty: nothing). Untranslated: the page translates it."""
    if len(files) > MAX_FILES:
        return {FIELD: TOO_MANY_FILES}
    for file in files:
        if len(file.data) > MAX_FILE_BYTES:
            return {FIELD: FILE_TOO_LARGE}
        if not file.data:
            return {FIELD: EMPTY_FILE}
    if sum(len(file.data) for file in files) > MAX_MESSAGE_BYTES:
        return {FIELD: MESSAGE_TOO_LARGE}
    return {}


def check(files: Sequence[IncomingFile]) -> None:
    """The size rules, or ValidationFailed with the `files` field's Norwegian message."""
    if found := problems(files):
        raise ValidationFailed(found)


def within_limits(
    files: Sequence[IncomingFile],
) -> tuple[list[IncomingFile], list[IncomingFile]]:
    """(kept, left out): for a sender who cannot be asked again (a mail), the files in order
    as long as each and all together stay within the size rules; empty files and the rest
    are left out, for the caller to say so."""
    kept: list[IncomingFile] = []
    left_out: list[IncomingFile] = []
    total = 0
    for file in files:
        fits = 0 < len(file.data) <= MAX_FILE_BYTES and total + len(file.data) <= MAX_MESSAGE_BYTES
        if fits and len(kept) < MAX_FILES:
            kept.append(file)
            total += len(file.data)
        else:
            left_out.append(file)
    return kept, left_out


def asked_again(failed: ValidationFailed, files: Sequence[IncomingFile]) -> ValidationFailed:
    """A form with files that failed for another field: say the files must be chosen again."""
    if files:
        failed.errors.setdefault(FIELD, CHOOSE_AGAIN)
    return failed


# --- storing ------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: a name that exists is never overwritten; 0600: only the portal reads them.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def path_of(stored_name: str) -> Path:
    return directory() / stored_name


async def store(
    files: Sequence[IncomingFile], *, ticket_id: int, message_id: int | None = None
) -> list[Attachment]:
    """Checks the files (`check`), writes each under ATTACHMENT_DIR with a random name and then
    inserts its row, in the caller's transaction (when there is one): a row never exists
    without its file. `message_id` None: the files came with the ticket itself."""
    check(files)
    written: list[Path] = []
    rows: list[Attachment] = []
    try:
        for file in files:
            stored_name = secrets.token_hex(20)
            path = path_of(stored_name)
            await asyncio.to_thread(_write, path, file.data)
            written.append(path)
            row = Attachment(
                ticket=ticket_id,
                message=message_id,
                filename=display_name(file.filename),
                size=len(file.data),
                content_type=detect_type(file.data),
                sha256=hashlib.sha256(file.data).hexdigest(),
                stored_name=stored_name,
            )
            await row.save()
            rows.append(row)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return rows


# --- reading ------------------------------------------------------------------------------


async def for_ticket(
    ticket: Ticket, *, include_internal: bool
) -> dict[int | None, list[AttachmentRow]]:
    """The ticket's attachments by message id (None: the ticket's own), in the order sent;
    an internal note's only with `include_internal`."""
    query = Attachment.select(
        Attachment.id,
        Attachment.message,
        Attachment.filename,
        Attachment.size,
        Attachment.content_type,
        Attachment.message.internal.as_alias("internal"),
    ).where(Attachment.ticket == ticket.id)
    found: dict[int | None, list[AttachmentRow]] = {}
    for row in await query.order_by(Attachment.id):
        if row.pop("internal") and not include_internal:
            continue
        found.setdefault(row["message"], []).append(AttachmentRow(**row))
    return found


def sees_internal(user: Any, ticket: Ticket) -> bool:
    """Internal notes, and their files, are for those who may write them: staff."""
    return policy.can(user, "internal_note", ticket)


async def get_for(user: User, ticket: Ticket, attachment_id: int) -> tuple[Attachment, Path]:
    """An attachment of `ticket` (which the caller got through tickets.get_ticket, so the
    company rule is already applied) and the path of its file. Another ticket's attachment,
    an internal note's for a customer, or a file gone from disk: NotFound."""
    attachment = await Attachment.objects().get(
        (Attachment.id == attachment_id) & (Attachment.ticket == ticket.id)
    )
    if attachment is None:
        raise NotFound("no such attachment on this ticket")
    if attachment.message is not None and not sees_internal(user, ticket):
        internal = await TicketMessage.exists().where(
            (TicketMessage.id == attachment.message) & TicketMessage.internal.eq(True)
        )
        if internal:
            raise NotFound("no such attachment for this user")
    path = path_of(attachment.stored_name)
    if not path.is_file():
        # Never by design (the file is written before its row): a lost disk or a bad restore.
        logger.error("attachment %s: its file %s is missing", attachment.id, path)
        raise NotFound("the attachment's file is missing")
    return attachment, path


def human_size(size: int) -> tuple[float | int, str]:
    """(number, unit) for showing a size: bytes, kB or MB."""
    if size < 1024:
        return size, "B"
    if size < MB:
        return round(size / 1024, 1), "kB"
    return round(size / MB, 1), "MB"
