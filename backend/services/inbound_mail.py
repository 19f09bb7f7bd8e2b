"""Support by e-mail (issue 11): what becomes of a mail to the support address.

The reseller's mail server forwards the support address to the portal's SMTP receiver
(`serve`, on INBOUND_SMTP_PORT); each mail is kept whole (`inbound_mail.raw`) and handled in
the same transaction (`receive`), and only then is the sender told 250, so a mail is never
lost: a failure answers 451 and the mail server tries again.

- From an active company user's address (superuser or member), naming no ticket of their
  company: a ticket for that company (channel mail) and an auto-reply with its number and when
  support is open; the superuser gets a copy of a ticket a member's mail opened.
- Naming a ticket of the sender's company, by `[SUP-000123]` in the subject or by one of that
  ticket's mails in In-Reply-To/References: the customer's reply on that ticket (the quoted
  earlier mail cut off, see `strip_quoted`). A number or Message-ID of another company's ticket
  is no reference: one company never writes into another's ticket.
- Everything else waits in the staff inbox (`/staff/inbox`) with its reason: an unknown sender;
  an automatic mail (an auto-reply, a bounce, a list's mail: `is_automatic`), which is never
  answered and never opens a ticket, so two auto-responders cannot keep a loop going; and a
  sender's new ticket beyond NEW_TICKETS_PER_HOUR (no ticket, no auto-reply). Staff attach
  it to a company (a ticket, channel mail) or discard it; both recorded, who and when.
- The same message again (the same sender and Message-ID: a mail server that did not hear our
  250) is kept, and changes nothing.

A reply by mail is never answered by mail (only a new ticket gets an auto-reply), so a customer's
auto-responder that answers without saying so still gets at most one mail from us.

Parsed with the standard library's `email` package (policy `default`); an HTML-only mail is
shown as plain text (`html_to_text`: tags, scripts and styles dropped).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import socket
from dataclasses import dataclass, field
from email import errors
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from html.parser import HTMLParser
from typing import Any

import msgspec

from backend.db import lock_row, write_transaction
from backend.i18n import N_
from backend.services import (
    attachments,
    catalog,
    clock,
    coverage,
    outbox,
    policy,
    ticket_mail,
    tickets,
    users,
    validation,
)
from backend.services.errors import NotFound, ValidationFailed
from backend.tables import (
    Channel,
    Company,
    InboundMail,
    InboundOutcome,
    InboxReason,
    Ticket,
    User,
)

logger = logging.getLogger("portal.inbound")

MAX_MESSAGE_BYTES = 35 * 1024 * 1024  # larger mails are refused (SMTP 552) before they are read
# A mail people write has a handful of parts; the parser takes seconds for thousands (the whole
# app waits), so more is refused unread. Counted as boundary lines, an upper bound.
MAX_PARTS = 200
LONGEST_ATTRIBUTION = 300  # characters: a longer line never introduces a quote
NEW_TICKETS_PER_HOUR = 20  # per sender address; beyond it mails wait in the staff inbox
NO_SUBJECT = N_("(uten emne)")
NO_TEXT = N_("(e-posten hadde ingen tekst)")
PREVIEW = 300


class MalformedMail(ValueError):
    """Not a mail the portal can read (no headers at all): refused with SMTP 550."""


# --- reading a mail ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedMail:
    from_address: str  # lower-cased; "" when none could be read
    from_name: str
    subject: str
    message_id: str
    references: list[str]  # In-Reply-To and References, the latest last
    text: str
    automatic: bool
    attachments: list[attachments.IncomingFile] = field(default_factory=list)
    # What the reseller's mail server said of the sender's domain: the DMARC result ("pass",
    # "fail", ...) in its Authentication-Results, by its authserv-id; "" when it said nothing.
    dmarc: dict[str, str] = field(default_factory=dict)


def parse(raw: bytes, envelope_from: str = "") -> ParsedMail:
    """What the portal reads from a mail; MalformedMail when it is no mail at all."""
    if not raw.strip() or b":" not in raw.split(b"\n", 1)[0]:
        raise MalformedMail("no header")
    if raw.count(b"\n--") > 2 * MAX_PARTS + 2:
        raise MalformedMail("too many parts")
    try:
        return _read(raw, envelope_from)
    except RecursionError:  # parts nested thousands deep
        raise MalformedMail("nested too deep") from None


def _read(raw: bytes, envelope_from: str) -> ParsedMail:
    message = BytesParser(policy=default_policy).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    name, address = _sender(message)
    body_part = message.get_body(preferencelist=("plain", "html"))
    return ParsedMail(
        from_address=address,
        from_name=name,
        subject=validation.collapse(_header(message, "Subject"))[:300],
        message_id=(ticket_mail.message_ids(_header(message, "Message-ID")) or [""])[0],
        references=ticket_mail.message_ids(
            _header(message, "References"), _header(message, "In-Reply-To")
        ),
        text=_text_of(body_part),
        automatic=is_automatic(message, envelope_from),
        attachments=attachments_of(message, body_part),
        dmarc=dmarc_results(message),
    )


def _header(message: EmailMessage, name: str) -> str:
    """A header as text; one the parser cannot make sense of is read as it came."""
    try:
        value = message.get(name)
    except Exception:  # the email package's header parser has corner cases that raise
        value = None
        for key, raw_value in message.raw_items():
            if key.lower() == name.lower():
                value = raw_value
                break
    text = "" if value is None else str(value)
    return validation.CONTROL_CHARACTER.sub(" ", text)


def _sender(message: EmailMessage) -> tuple[str, str]:
    """(name, address) of the mail's one sender; ("", "") unless it has exactly one From header
    naming exactly one mailbox that the parser reads without doubt. A From that can be read two
    ways (one address here, another for the mail server's DMARC check) would let anyone write
    as a customer."""
    try:
        headers = message.get_all("From") or []
        if len(headers) != 1:
            return "", ""
        header = headers[0]
        invalid = any(isinstance(d, errors.InvalidHeaderDefect) for d in header.defects)
        if invalid or len(header.addresses) != 1:
            return "", ""
        name, address = header.addresses[0].display_name, header.addresses[0].addr_spec
    except Exception:  # the email package's header parser has corner cases that raise
        return "", ""
    address = address.strip().lower()
    if "@" not in address or len(address) > 254 or any(c.isspace() for c in address):
        return "", ""
    return validation.collapse(name)[:200], address


def dmarc_results(message: EmailMessage) -> dict[str, str]:
    """{authserv-id: DMARC result} from the mail's Authentication-Results headers (RFC 8601),
    the topmost (the nearest server's) for each server."""
    found: dict[str, str] = {}
    for key, value in message.raw_items():
        if key.lower() != "authentication-results":
            continue
        server, _, results = str(value).partition(";")
        words = server.split()
        match = re.search(r"\bdmarc\s*=\s*(\w+)", results, re.IGNORECASE)
        if words:
            found.setdefault(words[0].lower(), match.group(1).lower() if match else "")
    return found


def vouched_for(mail: ParsedMail, authserv_id: str | None) -> bool:
    """Whether the sender may be believed: when INBOUND_AUTHSERV_ID names the reseller's mail
    server, only if that server found the From domain's DMARC to pass (it removes such headers
    that come from outside); without it, the From header is believed (the README says why to
    set it)."""
    return authserv_id is None or mail.dmarc.get(authserv_id) == "pass"


def is_automatic(message: EmailMessage, envelope_from: str) -> bool:
    """A mail no one typed, which must never be answered (RFC 3834): an auto-reply or a bounce
    (Auto-Submitted other than "no", an empty return path MAIL FROM:<>), a list's or bulk mail
    (Precedence bulk/junk/list/auto_reply, List-* headers), or one whose sender asks for no
    automatic answers (X-Auto-Response-Suppress)."""
    auto_submitted = _header(message, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return True
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        return True
    if _header(message, "X-Auto-Response-Suppress").strip():
        return True
    if any(_header(message, name) for name in ("List-Id", "List-Unsubscribe", "List-Post")):
        return True
    if envelope_from.strip() in {"", "<>"}:
        return True
    return message.get_content_type() == "multipart/report"  # a delivery status notice


def _text_of(part: Any) -> str:
    """The mail's text: its plain part, else its HTML part as plain text."""
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = html_to_text(content)
    return _tidy(content)


def _tidy(text: str) -> str:
    """Line endings as \\n, no control characters (PostgreSQL refuses NUL), no trailing space,
    at most two empty lines in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    lines = [validation.CONTROL_CHARACTER.sub("", line).rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def attachments_of(message: EmailMessage, body_part: Any = None) -> list[attachments.IncomingFile]:
    """Every file that came with the mail (an attachment, an inline image, an attached mail),
    in order: the one place attachments are read from a mail. The text the portal shows
    (`body_part`) is not one."""
    found: list[attachments.IncomingFile] = []
    for part in message.walk():
        if part is body_part or (
            part.is_multipart() and part.get_content_type() != "message/rfc822"
        ):
            continue
        filename = part.get_filename()
        if not (filename or part.is_attachment() or part.get_content_type() == "message/rfc822"):
            continue
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            content = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
        else:
            content = part.get_payload(decode=True) or b""
        found.append(
            attachments.IncomingFile(
                filename=attachments.display_name(filename or "vedlegg"),
                content_type=part.get_content_type(),
                data=content,
            )
        )
    return found


class _TextFromHtml(HTMLParser):
    """Only the text of an HTML document: no tag, attribute, script or style reaches it."""

    SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})
    BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "blockquote",
            "pre",
            "hr",
            "section",
            "article",
            "header",
            "footer",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
            if tag == "li":
                self.parts.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The text of an HTML-only mail, as plain text (the page escapes it like any text)."""
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# The line a mail program puts above the mail it quotes: "Den 1. des. 2026 kl. 10:00 skrev
# Support <support@…>:", "On Mon, 1 Dec 2026, Support wrote:", or Outlook's separator.
ATTRIBUTION = re.compile(r"\b(wrote|skrev|skreiv)\b.*:$", re.IGNORECASE)
SEPARATOR = re.compile(
    r"^-{2,}\s*(original message|opprinnelig melding|videresendt melding|forwarded message)"
    r"\s*-{2,}$",
    re.IGNORECASE,
)


def _introduces_quote(line: str) -> bool:
    line = line.strip()
    if len(line) > LONGEST_ATTRIBUTION:  # and the pattern's search grows with its square
        return False
    if SEPARATOR.match(line):
        return True
    # A date or an address in it: "Jeg skrev dette:" in the customer's own words is not one.
    return bool(ATTRIBUTION.search(line)) and bool(re.search(r"\d|@", line))


def strip_quoted(text: str) -> str:
    """A reply without the earlier mail it quotes: cut at the line that introduces the quote
    ("Den 1. des. 2026 kl. 10:00 skrev …:", "On … wrote:", "-----Original Message-----"), and
    quoted lines ("> …") at the end. What is left is the customer's own words; if nothing is
    left (they wrote between the quoted lines), the whole text. The mail itself is kept."""
    lines = text.split("\n")
    cut = len(lines)
    for number, line in enumerate(lines):
        if _introduces_quote(line):
            cut = number
            break
    kept = lines[:cut]
    while kept and (kept[-1].startswith(">") or not kept[-1].strip()):
        kept.pop()
    own = "\n".join(kept).strip()
    return own or text


async def guess_product(company_id: int, text: str) -> str:
    """The product a mail names, if it names exactly one (by its name, or without "Autodesk ");
    of several, the one the company's agreements cover, if exactly one. Else "" for staff to
    choose. "Inventor CAM" names Inventor CAM, not also Inventor."""
    lowered = text.lower()
    named: dict[str, str] = {}
    for product in (await catalog.current_offer()).products:
        for phrase in {product.name.lower(), product.name.lower().removeprefix("autodesk ")}:
            if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", lowered):
                named[phrase] = product.code
    codes = {
        code
        for phrase, code in named.items()
        if not any(phrase != other and phrase in other for other in named)
    }
    if len(codes) > 1:
        by_plan, by_account = await coverage.covered_products(company_id, clock.today())
        codes &= by_plan | by_account
    return codes.pop() if len(codes) == 1 else tickets.NO_PRODUCT


# --- receiving -----------------------------------------------------------------------------------


async def receive(
    raw: bytes, envelope_from: str = "", recipients: list[str] | None = None
) -> InboundMail:
    """Keep the mail and do what it asks (see the module's docstring), in one transaction.
    MalformedMail for what is no mail; any other failure leaves nothing written."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedMail("too large")
    mail = parse(raw, envelope_from)
    row = InboundMail(
        envelope_from=envelope_from.strip("<>")[:254],
        envelope_to=", ".join(recipients or [])[:1000],
        from_address=mail.from_address,
        from_name=mail.from_name,
        subject=mail.subject,
        message_id=mail.message_id,
        body=mail.text,
        raw=raw,
        size=len(raw),
        attachment_count=len(mail.attachments),
        outcome=InboundOutcome.inbox.value,
        received_at=clock.now(),
    )
    async with write_transaction(InboundMail._meta.db):
        sender = await _company_user(mail.from_address)
        if sender is not None:
            # One sender's mails one at a time (PostgreSQL; SQLite writes one at a time anyway):
            # the hour's count and the duplicate check cannot both pass for two at once.
            await lock_row(User, sender.id)
            row.sender = sender.id
            row.company = sender.company
        if await _seen_before(mail):
            row.outcome = InboundOutcome.duplicate.value
        elif not mail.from_address:
            row.reason = InboxReason.unreadable.value
        elif mail.automatic or _is_our_own(mail.from_address):
            row.reason = InboxReason.automatic.value
        elif sender is None:
            row.reason = InboxReason.unknown_sender.value
        elif not vouched_for(mail, outbox.current_settings().inbound_authserv_id):
            row.reason = InboxReason.unverified.value
        elif (ticket := await _referenced_ticket(mail, sender.company)) is not None and (
            not policy.can_reply_by_mail(sender, ticket)
        ):
            row.reason = InboxReason.not_allowed.value
            row.ticket = ticket.id  # shown on the ticket's page, for staff to decide
        elif ticket is not None:
            row.outcome = InboundOutcome.reply.value
            row.ticket = ticket.id
            files, text = _files_and_text(mail.attachments, strip_quoted(mail.text))
            await tickets.record_message(sender, ticket, text, files=files)
            await ticket_mail.remember(ticket.id, mail.message_id)
        elif await _new_tickets_last_hour(mail.from_address) >= NEW_TICKETS_PER_HOUR:
            row.reason = InboxReason.too_many.value
        else:
            ticket = await _open_ticket(sender, mail)
            row.outcome = InboundOutcome.ticket.value
            row.ticket = ticket.id
        await row.save()
    logger.info("mail %s from %s: %s %s", row.id, mail.from_address or "?", row.outcome, row.reason)
    return row


# Said in the thread, in the portal's language, when a mail's files were too many or too large.
LEFT_OUT = (
    "Vedlegg som ikke er lagt ved saken (for store eller for mange; de finnes i e-posten "
    "slik den kom): {names}"
)


def _files_and_text(
    sent: list[attachments.IncomingFile], text: str
) -> tuple[list[attachments.IncomingFile], str]:
    """The files a mail's message keeps and the text it says, naming the files it could not
    keep: a mail cannot be asked again, so it is never refused for its files (the whole mail,
    files and all, stays in the staff's view of it)."""
    files, left_out = attachments.within_limits(sent)
    names = ", ".join(file.filename for file in left_out)[:1000]
    note = f"\n\n[{LEFT_OUT.format(names=names)}]" if left_out else ""
    return files, (text[: tickets.BODY_MAX - len(note)] + note).strip() or NO_TEXT


async def _company_user(address: str) -> User | None:
    if not address:
        return None
    user = await User.objects().get(User.email == address)
    if user is None or user.role not in users.COMPANY_ROLES or not await users.is_active(user):
        return None
    return user


def _is_our_own(address: str) -> bool:
    """Our own address as the sender: a mail of ours come back, never to be answered."""
    return address == outbox.sender(outbox.current_settings()).addr_spec.lower()


async def _seen_before(mail: ParsedMail) -> bool:
    if not mail.message_id or not mail.from_address:
        return False
    return await InboundMail.exists().where(
        (InboundMail.message_id == mail.message_id)
        & (InboundMail.from_address == mail.from_address)
    )


async def _referenced_ticket(mail: ParsedMail, company_id: int) -> Ticket | None:
    """The sender's company's ticket the mail names: by number in the subject first, then by
    the mails it answers. Another company's ticket is never the answer."""
    candidates = ticket_mail.numbers_in_subject(mail.subject)
    candidates += await ticket_mail.tickets_referenced(mail.references)
    candidates = [number for number in candidates if 0 < number <= validation.MAX_ID]
    if not candidates:
        return None
    found = await Ticket.objects().where(
        Ticket.id.is_in(candidates) & (Ticket.company == company_id)
    )
    by_id = {ticket.id: ticket for ticket in found}
    return next((by_id[number] for number in candidates if number in by_id), None)


async def _new_tickets_last_hour(address: str) -> int:
    since = clock.now() - datetime.timedelta(hours=1)
    return await InboundMail.count().where(
        (InboundMail.from_address == address)
        & (InboundMail.outcome == InboundOutcome.ticket.value)
        & (InboundMail.received_at > since)
    )


async def _open_ticket(sender: User, mail: ParsedMail) -> Ticket:
    ticket = await _ticket_from(mail, sender.company, sender.id)
    await ticket_mail.acknowledge(ticket, sender)
    return ticket


async def _ticket_from(mail: ParsedMail | InboundMail, company_id: int, opened_by: int) -> Ticket:
    if isinstance(mail, ParsedMail):
        text, sent = mail.text, mail.attachments
    else:  # from the staff inbox: the files are in the mail as it was kept
        text, sent = mail.body, parse(bytes(mail.raw)).attachments
    files, description = _files_and_text(sent, text)
    ticket = await tickets.create(
        company_id=company_id,
        opened_by=opened_by,
        product_code=await guess_product(company_id, f"{mail.subject}\n{text}"),
        subject=mail.subject[:200] or NO_SUBJECT,
        description=description,
        channel=Channel.mail.value,
        files=files,
    )
    await ticket_mail.remember(ticket.id, mail.message_id)
    return ticket


# --- the staff inbox ("Ukjent avsender") ----------------------------------------------------


class InboxRow(msgspec.Struct, frozen=True):
    id: int
    received_at: datetime.datetime
    from_address: str
    from_name: str
    subject: str
    reason: str
    preview: str


REASON_LABELS = {
    InboxReason.unknown_sender.value: N_("Ukjent avsender"),
    InboxReason.automatic.value: N_("Automatisk svar eller retur"),
    InboxReason.too_many.value: N_("For mange nye saker fra avsenderen siste time"),
    InboxReason.unreadable.value: N_("Avsenderen kunne ikke leses"),
    InboxReason.unverified.value: N_("Avsenderen er ikke bekreftet av e-postserveren"),
    InboxReason.not_allowed.value: N_("Svar fra et medlem på en sak medlemmet ikke åpnet"),
}


async def inbox(user: User) -> list[InboxRow]:
    """Mails waiting for staff, the oldest first."""
    policy.require(user, "handle_inbox")
    rows = (
        await InboundMail.select(
            InboundMail.id,
            InboundMail.received_at,
            InboundMail.from_address,
            InboundMail.from_name,
            InboundMail.subject,
            InboundMail.reason,
            InboundMail.body,
        )
        .where(InboundMail.outcome == InboundOutcome.inbox.value)
        .order_by(InboundMail.received_at)
        .order_by(InboundMail.id)
        .limit(500)
    )
    return [
        InboxRow(
            id=row["id"],
            received_at=row["received_at"],
            from_address=row["from_address"],
            from_name=row["from_name"],
            subject=row["subject"],
            reason=row["reason"],
            preview=" ".join(row["body"].split())[:PREVIEW],
        )
        for row in rows
    ]


async def get_mail(user: User, mail_id: int) -> InboundMail:
    """One received mail, for staff."""
    policy.require(user, "handle_inbox")
    mail = await InboundMail.objects().get(InboundMail.id == mail_id)
    if mail is None:
        raise NotFound("no such mail")
    return mail


async def mails_of_ticket(user: User, ticket_id: int) -> list[dict[str, Any]]:
    """The mails that opened or answered a ticket, in the order they came: staff open each as it
    came (its attachments too) from the ticket's page."""
    policy.require(user, "handle_inbox")
    return (
        await InboundMail.select(
            InboundMail.id,
            InboundMail.received_at,
            InboundMail.from_address,
            InboundMail.subject,
            InboundMail.attachment_count,
        )
        .where(InboundMail.ticket == ticket_id)
        .order_by(InboundMail.id)
    )


class AttachForm(msgspec.Struct):
    company: validation.field(int, ge=1, le=validation.MAX_ID, message=N_("Velg et firma."))


ALREADY_HANDLED = N_("E-posten er allerede behandlet av en annen.")


async def attach(user: User, mail_id: int, values: dict[str, Any]) -> Ticket:
    """Staff attach a mail from the inbox to a company: a ticket for it (channel mail), opened
    by that staff member. Twice, or by two at once, is one ticket."""
    await get_mail(user, mail_id)  # no such mail: 404, whatever the form says
    form = validation.convert(values, AttachForm)
    if not await Company.exists().where(Company.id == form.company):
        raise ValidationFailed({"company": N_("Velg et firma.")})
    async with write_transaction(InboundMail._meta.db):
        mail = await _take_from_inbox(user, mail_id, InboundOutcome.attached)
        ticket = await _ticket_from(mail, form.company, user.id)
        await InboundMail.update(
            {InboundMail.ticket: ticket.id, InboundMail.company: form.company}
        ).where(InboundMail.id == mail.id)
    return ticket


async def discard(user: User, mail_id: int) -> None:
    """Staff discard a mail from the inbox (it is kept, marked discarded, by whom and when)."""
    policy.require(user, "handle_inbox")
    async with write_transaction(InboundMail._meta.db):
        await _take_from_inbox(user, mail_id, InboundOutcome.discarded)


async def _take_from_inbox(user: User, mail_id: int, outcome: InboundOutcome) -> InboundMail:
    taken = (
        await InboundMail.update(
            {
                InboundMail.outcome: outcome.value,
                InboundMail.handled_by: user.id,
                InboundMail.handled_at: clock.now(),
            }
        )
        .where((InboundMail.id == mail_id) & (InboundMail.outcome == InboundOutcome.inbox.value))
        .returning(InboundMail.id)
    )
    if not taken:
        await get_mail(user, mail_id)  # NotFound for no such mail
        raise ValidationFailed({"form": ALREADY_HANDLED})
    mail = await InboundMail.objects().get(InboundMail.id == mail_id)
    assert mail is not None
    return mail


# --- the SMTP receiver -------------------------------------------------------------------------


class _Receiver:
    """aiosmtpd's handler: 250 only once the mail is committed (`receive`)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        try:
            mail = await receive(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        except MalformedMail as error:
            logger.warning("mail from %s refused: %s", envelope.mail_from, error)
            return "550 5.6.0 Not a mail the support portal can read"
        except Exception:
            # Nothing was written: the sending server keeps the mail and tries again.
            logger.exception("mail from %s could not be taken", envelope.mail_from)
            return "451 4.3.0 The support portal cannot take mail just now; try again later"
        return f"250 2.0.0 Received as {mail.id}"


async def start_receiver(host: str, port: int) -> asyncio.Server:
    """The SMTP receiver on host:port, on the running loop (the app's, or `portal
    receive-mail`'s), so it uses that loop's database connections. Mail larger than
    MAX_MESSAGE_BYTES is refused with 552 as it arrives."""
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    # Named once: aiosmtpd would otherwise ask DNS for this machine's name on every connection.
    hostname = socket.gethostname()
    return await loop.create_server(
        lambda: SMTP(
            _Receiver(),
            hostname=hostname,
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            ident="Supportportalen",
            timeout=60,
        ),
        host=host,
        port=port,
    )
