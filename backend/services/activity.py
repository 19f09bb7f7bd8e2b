"""A ticket's last activity: what orders the customer's ticket history, newest first.

Activity is what the customer can see happen on the ticket: it was opened, a message that
is not an internal note was written (by them or by support), its status changed, or support
time on it was logged or voided (which changes its billed time and cost). An internal note
is not activity: the ticket would rise to the top of the history with nothing new to see.

`Ticket.last_activity_at` only moves forward, so a ticket's place in the history's keyset
(last activity, id) only rises: a page that starts after a row never meets a ticket shown
before it, and a ticket that had no activity keeps its place (services/tickets.history).
"""

from __future__ import annotations

import datetime

from backend.services import clock
from backend.tables import Ticket


async def record(ticket_id: int, at: datetime.datetime | None = None) -> None:
    """Ticket `ticket_id` had activity at `at` (now by default): each place that writes such
    an event calls this, inside its own transaction if it has one."""
    at = at or clock.now()
    await Ticket.update({Ticket.last_activity_at: at}).where(
        (Ticket.id == ticket_id) & (Ticket.last_activity_at < at)
    )
