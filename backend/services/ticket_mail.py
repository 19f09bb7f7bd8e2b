"""Mail about a ticket (issue 11): the auto-reply to a mail that opened one, the superuser's copy
of a ticket a member's mail opened, and staff replies by mail.

Every one carries the ticket's number in its subject (`[SUP-000123]`) and threads under the
ticket's earlier mails (In-Reply-To: the latest, References: the latest REFERENCES_KEPT), and
its own Message-ID is kept with the ticket (`ticket_mail_id`), so an answer to it finds its
ticket again (services/inbound_mail.py) by either. Each is queued in its cause's transaction
(services/outbox.py). Mails about a ticket go only to the company's registered people: the
one who opened it (a company user) and the superuser, each in their own language.
"""

from __future__ import annotations

import re
from typing import Any

from backend.services import business, companies, outbox, tickets, users
from backend.services.availability import availability_at
from backend.tables import Ticket, TicketMailId, TicketMessage, User
from backend.tables.users import Role

# What our automatic mails say about themselves (RFC 3834), so auto-responders leave them be.
AUTO_REPLIED = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
AUTO_GENERATED = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
REFERENCES_KEPT = 20
SUBJECT_NUMBER = re.compile(r"\[SUP-(\d{1,9})\]", re.IGNORECASE | re.ASCII)
MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


def numbers_in_subject(subject: str) -> list[int]:
    """The ticket ids a subject names as [SUP-000123], in order."""
    return [int(number) for number in SUBJECT_NUMBER.findall(subject)]


def message_ids(*headers: str) -> list[str]:
    """The Message-IDs (`<…>`) in In-Reply-To / References headers, the latest last."""
    return [found for header in headers for found in MESSAGE_ID.findall(header or "")]


async def remember(ticket_id: int, message_id: str) -> None:
    """This mail (ours or the customer's) is about this ticket."""
    if message_id:
        await TicketMailId(ticket=ticket_id, message_id=message_id[:255]).save()


async def tickets_referenced(ids: list[str]) -> list[int]:
    """The tickets mails with these Message-IDs were about, the most recently named first."""
    if not ids:
        return []
    rows = await TicketMailId.select(TicketMailId.message_id, TicketMailId.ticket).where(
        TicketMailId.message_id.is_in(ids[-REFERENCES_KEPT * 5 :])
    )
    by_id: dict[str, list[int]] = {}
    for row in rows:
        by_id.setdefault(row["message_id"], []).append(row["ticket"])
    found: list[int] = []
    for message_id in reversed(ids):
        found += [ticket for ticket in by_id.get(message_id, []) if ticket not in found]
    return found


async def _thread_headers(ticket_id: int) -> dict[str, str]:
    rows = (
        await TicketMailId.select(TicketMailId.message_id)
        .where(TicketMailId.ticket == ticket_id)
        .order_by(TicketMailId.id, ascending=False)
        .limit(REFERENCES_KEPT)
    )
    ids = [row["message_id"] for row in reversed(rows)]
    if not ids:
        return {}
    return {"In-Reply-To": ids[-1], "References": " ".join(ids)}


async def _send(
    ticket: Ticket,
    to: User,
    template: str,
    key: str,
    context: dict[str, Any],
    headers: dict[str, str],
) -> None:
    message_id = outbox.new_message_id()
    thread = await _thread_headers(ticket.id)
    queued = await outbox.queue(
        to.email,
        template,
        {"ticket": ticket, "number": tickets.ticket_number(ticket.id), "recipient": to, **context},
        key,
        language=users.language_of(to),
        headers={**thread, **headers},
        message_id=message_id,
    )
    if queued:
        await remember(ticket.id, message_id)


async def recipients(ticket: Ticket) -> list[User]:
    """Who hears from support about a ticket: its opener when that is one of the company's
    active users, and the company's superuser (the offer's one channel), once each."""
    found: list[User] = []
    opener = await User.objects().get(User.id == ticket.opened_by)
    if (
        opener is not None
        and opener.active
        and opener.company == ticket.company
        and opener.role in users.COMPANY_ROLES
    ):
        found.append(opener)
    superuser = await companies.get_superuser(ticket.company)
    if superuser is not None and superuser.active and superuser.id not in {u.id for u in found}:
        found.append(superuser)
    return found


async def acknowledge(ticket: Ticket, sender: User) -> None:
    """The auto-reply to the mail that opened `ticket`: its number and when support is open.
    A ticket a member's mail opened is the company's: the superuser gets a copy."""
    when = availability_at(ticket.created_at, (await business.current()).extra_closed_days)
    context = {"open_now": when.open_now, "next_opening": when.next_opening, "sender": sender}
    await _send(
        ticket, sender, "ticket_received", f"ticket-received:{ticket.id}", context, AUTO_REPLIED
    )
    if sender.role == Role.member.value:
        superuser = await companies.get_superuser(ticket.company)
        if superuser is not None and superuser.active and superuser.id != sender.id:
            await _send(
                ticket,
                superuser,
                "ticket_copy",
                f"ticket-copy:{ticket.id}",
                context,
                AUTO_GENERATED,
            )


async def mail_staff_reply(ticket: Ticket, message: TicketMessage, author: User) -> None:
    """A staff reply (never an internal note) to the ticket's people by mail."""
    for person in await recipients(ticket):
        await _send(
            ticket,
            person,
            "ticket_reply",
            f"ticket-reply:{message.id}:{person.id}",
            {"message": message, "author": author},
            {},
        )
