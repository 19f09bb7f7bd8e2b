"""Who may do what (SPEC §1): one table of actions × roles, plus the one object rule.

Services ask `can`/`require` before they act, routes carry guards built from it
(backend/web/guards.py) and templates ask the same `can` (a Jinja global). Nobody else
compares role strings.

The object rule: a customer (superuser, member) acts only on what belongs to their own
company (`obj.company == user.company`); staff act on every company's. A customer asking
about another company's object is told it does not exist (NotFound), not that it is
forbidden, so ids of other companies' rows reveal nothing.
"""

from __future__ import annotations

from typing import Any, Final

from backend.services.errors import NotAllowed
from backend.tables import Role

VISITOR: Final = "visitor"
SUPERUSER: Final = Role.superuser.value
MEMBER: Final = Role.member.value
TECHNICIAN: Final = Role.technician.value
ADMIN: Final = Role.admin.value

ROLES: Final = (VISITOR, SUPERUSER, MEMBER, TECHNICIAN, ADMIN)
COMPANY: Final = frozenset({SUPERUSER, MEMBER})
STAFF: Final = frozenset({TECHNICIAN, ADMIN})

# action: the roles that may do it. Read it as SPEC §1's table turned sideways.
ACTIONS: Final[dict[str, frozenset[str]]] = {
    # Everyone signed in keeps their own account: their password.
    "manage_own_account": COMPANY | STAFF,
    # The company's own pages: agreements, minutes, statement, tickets, orders.
    "view_company": COMPANY,
    "view_ticket": COMPANY | STAFF,
    "view_order": COMPANY,
    # Only the superuser buys, renews, tops up, pays charges or cancels an order.
    "buy": frozenset({SUPERUSER}),
    # Add covered products to the plan in force (paid, pro rata) or the time account (free).
    "add_products": frozenset({SUPERUSER}),
    "edit_company": frozenset({SUPERUSER}),
    # Keys for the company's own systems (services/api_tokens.py).
    "manage_api_tokens": frozenset({SUPERUSER}),
    # Invite and remove members, hand the superuser role to one (services/members.py).
    "manage_members": frozenset({SUPERUSER}),
    # Support requests are opened by (or on behalf of) the superuser: on the web by the
    # superuser, by phone or mail through staff (open_ticket_for).
    "open_ticket": frozenset({SUPERUSER}),
    "reply": frozenset({SUPERUSER}) | STAFF,
    "resolve": frozenset({SUPERUSER}),
    # The reseller's console.
    "work_queue": STAFF,
    "open_ticket_for": STAFF,
    "internal_note": STAFF,
    "set_status": STAFF,
    "set_product": STAFF,
    "log_time": STAFF,
    "void_time": STAFF,
    "view_companies": STAFF,
    # Mail to the support address that no ticket took (services/inbound_mail.py).
    "handle_inbox": STAFF,
    # The back office.
    "adjust_minutes": frozenset({ADMIN}),
    "extend_expiry": frozenset({ADMIN}),
    "review_orders": frozenset({ADMIN}),
    # Refund a paid order, fully or partly (services/refunds.py).
    "refund": frozenset({ADMIN}),
    # /staff/admin (issue 12): its index, the audit trail, the staff accounts.
    "back_office": frozenset({ADMIN}),
    "view_audit": frozenset({ADMIN}),
    "manage_staff": frozenset({ADMIN}),
    # Edit a company's details, move its superuser role, deactivate and reactivate it.
    "manage_companies": frozenset({ADMIN}),
    # Onboard a customer from before the portal, by form or CSV (services/onboarding.py).
    "onboard_customers": frozenset({ADMIN}),
    # What the business sold, used and earned, and who to call (services/reports.py).
    "view_reports": frozenset({ADMIN}),
    # Products, versioned prices and the business's settings (services/catalog.py, business.py).
    "manage_catalog": frozenset({ADMIN}),
    # Update advisories (services/advisories.py): staff publish, revise and withdraw them.
    "publish_advisories": STAFF,
    # Which covered products' advisories the company is mailed about.
    "follow_advisories": frozenset({SUPERUSER}),
}


def role_of(user: Any) -> str:
    """The user's role, `visitor` for nobody signed in."""
    return VISITOR if user is None else user.role


def is_staff(user: Any) -> bool:
    return role_of(user) in STAFF


def can(user: Any, action: str, obj: Any = None) -> bool:
    """Whether `user` (None: a visitor) may do `action`, on `obj` when given (anything with a
    `company` attribute or key: a ticket, an order, a company id via `owns`)."""
    role = role_of(user)
    if role not in ACTIONS[action]:
        return False
    return obj is None or owns(user, obj)


def owns(user: Any, obj: Any) -> bool:
    """The object rule: staff reach every company's objects, a customer only their own."""
    if is_staff(user):
        return True
    company = obj.get("company") if isinstance(obj, dict) else getattr(obj, "company", None)
    return user is not None and company is not None and company == user.company


def can_reply_by_mail(user: Any, ticket: Any) -> bool:
    """By mail as on the web, but a member's mail may open a ticket (services/inbound_mail.py),
    and support's replies go to the member who wrote: so a member may answer by mail the
    tickets they opened, and no others."""
    if can(user, "reply", ticket):
        return True
    return role_of(user) == MEMBER and owns(user, ticket) and ticket.opened_by == user.id


def require(user: Any, action: str, obj: Any = None) -> None:
    """`can`, or NotAllowed saying which action was refused."""
    if not can(user, action, obj):
        raise NotAllowed(f"{role_of(user)} may not {action}")
