"""The events an action's response announces to the page (htmx's `HX-Trigger` header), and
what the dashboard's regions listen for: each region asks for itself again when one arrives,
instead of the whole page reloading."""

from __future__ import annotations

from typing import TypeVar

from litestar.response import Response

R = TypeVar("R", bound=Response)

# Minutes or money changed: a payment, a debit, a credit, an adjustment, an order's status.
BALANCE_CHANGED = "balance-changed"
# A ticket was opened, answered, resolved or had time logged.
TICKETS_CHANGED = "tickets-changed"
# Dispatched on <body> by static/app.js when the tab is shown again, so a payment completed
# in another tab shows up. (htmx's trigger filters, `[document.visibilityState…]`, need eval,
# which the Content-Security-Policy forbids.)
PAGE_SHOWN = "page-shown"


def listens_to(event: str) -> str:
    """A region's `hx-trigger`: the event, from wherever on the page it was announced, or the
    tab shown again."""
    return f"{event} from:body, {PAGE_SHOWN} from:body"


# Told to the portal's other tabs too (static/app.js, a BroadcastChannel): the dashboard open
# in one tab refreshes its regions when a payment is confirmed or charges are paid in another.
SHARED_BETWEEN_TABS = (BALANCE_CHANGED, TICKETS_CHANGED)

# The `hx-trigger` of each kind of region, for the templates.
REGION_TRIGGERS = {
    "balance": listens_to(BALANCE_CHANGED),
    "tickets": listens_to(TICKETS_CHANGED),
}


def announce(response: R, *events: str) -> R:
    """Let the page know: htmx fires each event on the element that made the request, and it
    bubbles up to <body>, where the regions listen."""
    if events:
        response.headers["HX-Trigger"] = ", ".join(events)
    return response
