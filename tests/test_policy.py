"""One permission policy (SPEC §1): every route of the app, walked by every role, answers what
backend/services/policy.py says — sign in, 403, 404 (another company's object), or through."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from backend.services import (
    advisories,
    api_tokens,
    attachments,
    catalog,
    clock,
    inbound_mail,
    members,
    orders,
    policy,
    tickets,
)
from backend.services.users import create_staff, hash_password
from backend.tables import Invitation, Order, Product, Role, User
from tests.support import PASSWORD, login, make_company, new_email


@dataclass(frozen=True)
class Rule:
    """A route's guards (actions every caller needs), the object it names and the action
    done on that object."""

    guards: tuple[str, ...] = ()
    obj: str | None = None
    action: str | None = None


# The smallest PNG a browser shows: a thumbnail is served only for a verified PNG/JPEG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

PUBLIC = Rule()
COMPANY = Rule(("view_company",))
STAFF = Rule(("work_queue",))

ROUTES: dict[str, Rule] = {
    "home": PUBLIC,
    "favicon": PUBLIC,
    "healthz": PUBLIC,
    "language": PUBLIC,
    "register": PUBLIC,
    "register_submit": PUBLIC,
    "register_lookup": PUBLIC,
    "login": PUBLIC,
    "login_submit": PUBLIC,
    "password": Rule(("manage_own_account",)),
    "password_change": Rule(("manage_own_account",)),
    "email": Rule(("manage_own_account",)),
    "email_change": Rule(("manage_own_account",)),
    # A mailed link is its own permission: for whoever holds it, signed in or not.
    "email_confirm": PUBLIC,
    "email_confirm_submit": PUBLIC,
    "password_forgot": PUBLIC,
    "password_forgot_submit": PUBLIC,
    "password_reset": PUBLIC,
    "password_reset_submit": PUBLIC,
    "dashboard": COMPANY,
    "account": COMPANY,
    "usage": COMPANY,
    "usage_csv": COMPANY,
    "orders": COMPANY,
    "price_preview": COMPANY,
    "company": COMPANY,
    "company_update": Rule(("view_company", "edit_company")),
    "low_balance_update": Rule(("view_company", "edit_company")),
    "plan": COMPANY,
    "plan_products": Rule(("view_company", "add_products")),
    "account_products": Rule(("view_company", "add_products")),
    "account_products_add": Rule(("view_company", "add_products")),
    "topup": COMPANY,
    "charges": COMPANY,
    "company_api": Rule(("view_company", "manage_api_tokens")),
    "api_token_create": Rule(("view_company", "manage_api_tokens")),
    "api_token_revoke": Rule(("view_company", "manage_api_tokens"), "token"),
    "members": COMPANY,
    "invitation_create": Rule(("view_company", "manage_members")),
    "invitation_resend": Rule(("view_company", "manage_members"), "invitation"),
    "invitation_withdraw": Rule(("view_company", "manage_members"), "invitation"),
    "superuser_handover": Rule(("view_company", "manage_members"), "member"),
    "member_remove": Rule(("view_company", "manage_members"), "member"),
    # The link in an invitation mail: the token is the permission.
    "invitation": PUBLIC,
    "invitation_accept": PUBLIC,
    "api_account": COMPANY,
    "api_tickets": COMPANY,
    "api_ticket": Rule(("view_company",), "ticket"),
    "api_usage": COMPANY,
    "order_create": Rule(("view_company", "buy")),
    "order": Rule(("view_company",), "order"),
    "order_status": Rule(("view_company",), "order"),
    "receipt": Rule(("view_company",), "order"),
    "receipt_pdf": Rule(("view_company",), "order"),
    "order_pay": Rule(("view_company",), "order", "buy"),
    "order_cancel": Rule(("view_company",), "order", "buy"),
    "tickets": COMPANY,
    "ticket_new": Rule(("view_company", "open_ticket")),
    "ticket_create": Rule(("view_company", "open_ticket")),
    "ticket": Rule(("view_company",), "ticket"),
    "ticket_reply": Rule(("view_company",), "ticket", "reply"),
    "ticket_resolve": Rule(("view_company",), "ticket", "resolve"),
    "ticket_attachment": Rule(("view_company",), "ticket"),
    "ticket_attachment_image": Rule(("view_company",), "ticket"),
    "staff_queue": STAFF,
    "admin_reports": Rule(("view_reports",)),
    "admin_reports_months_csv": Rule(("view_reports",)),
    "admin_reports_follow_up_csv": Rule(("view_reports",)),
    "staff_ticket": Rule(("work_queue",), "ticket"),
    "staff_ticket_message": Rule(("work_queue",), "ticket", "reply"),
    "staff_ticket_attachment": Rule(("work_queue",), "ticket"),
    "staff_ticket_attachment_image": Rule(("work_queue",), "ticket"),
    "staff_ticket_status": Rule(("work_queue",), "ticket", "set_status"),
    "staff_ticket_time": Rule(("work_queue",), "ticket", "log_time"),
    "staff_ticket_product": Rule(("work_queue",), "ticket", "set_product"),
    "staff_time_entry_void": Rule(("work_queue",), "entry", "void_time"),
    "staff_ticket_new": Rule(("work_queue", "open_ticket_for")),
    "staff_ticket_create": Rule(("work_queue", "open_ticket_for")),
    "staff_companies": Rule(("work_queue", "view_companies")),
    "staff_company": Rule(("work_queue", "view_companies"), "company"),
    "staff_company_adjust": Rule(("work_queue", "adjust_minutes"), "company"),
    "staff_company_edit": Rule(("work_queue", "manage_companies"), "company"),
    "staff_company_superuser": Rule(("work_queue", "manage_companies"), "company"),
    "staff_company_deactivate": Rule(("work_queue", "manage_companies"), "company"),
    "staff_company_reactivate": Rule(("work_queue", "manage_companies"), "company"),
    "staff_company_extend_expiry": Rule(("work_queue", "extend_expiry"), "company"),
    "staff_inbox": Rule(("work_queue", "handle_inbox")),
    "staff_inbox_mail": Rule(("work_queue", "handle_inbox")),
    "staff_inbox_raw": Rule(("work_queue", "handle_inbox")),
    "staff_inbox_attach": Rule(("work_queue", "handle_inbox")),
    "staff_inbox_discard": Rule(("work_queue", "handle_inbox")),
    # The back office (issue 12): admins only.
    "admin_index": Rule(("back_office",)),
    "admin_audit": Rule(("back_office", "view_audit")),
    "admin_staff": Rule(("back_office", "manage_staff")),
    "admin_staff_create": Rule(("back_office", "manage_staff")),
    "admin_staff_deactivate": Rule(("back_office", "manage_staff")),
    "admin_staff_reactivate": Rule(("back_office", "manage_staff")),
    "admin_staff_reset": Rule(("back_office", "manage_staff")),
    "staff_order": Rule(("review_orders",), "order"),
    "staff_order_refund": Rule(("review_orders", "refund"), "order"),
    "staff_order_refund_confirm": Rule(("review_orders", "refund"), "order"),
    "staff_order_refund_resend": Rule(("review_orders", "refund"), "order"),
    # Products, price versions and the business's settings.
    "admin_catalog": Rule(("manage_catalog",)),
    "admin_product_create": Rule(("manage_catalog",)),
    "admin_product_change": Rule(("manage_catalog",)),
    "admin_prices": Rule(("manage_catalog",)),
    "admin_price_version_create": Rule(("manage_catalog",)),
    "admin_settings": Rule(("manage_catalog",)),
    "admin_settings_save": Rule(("manage_catalog",)),
    "admin_onboarding": Rule(("back_office", "onboard_customers")),
    "admin_onboarding_create": Rule(("back_office", "onboard_customers")),
    "admin_onboarding_csv": Rule(("back_office", "onboard_customers")),
    "admin_onboarding_csv_confirm": Rule(("back_office", "onboard_customers")),
    # Update advisories (issue 13).
    "staff_advisories": Rule(("publish_advisories",)),
    "staff_advisory_new": Rule(("publish_advisories",)),
    "staff_advisory_create": Rule(("publish_advisories",)),
    "staff_advisory": Rule(("publish_advisories",)),
    "staff_advisory_revise": Rule(("publish_advisories",)),
    "staff_advisory_withdraw_confirm": Rule(("publish_advisories",)),
    "staff_advisory_withdraw": Rule(("publish_advisories",)),
    "portal_advisories": COMPANY,
    "portal_advisory_follows": Rule(("view_company", "follow_advisories")),
    # Any advisory's page: its details only for a covered company (tests/test_advisories.py).
    "portal_advisory": COMPANY,
    "public_advisories": PUBLIC,
    "portal_advisory_feed": Rule(("view_company", "manage_api_tokens")),
    "api_advisories": COMPANY,
    # Development only (not in production): the mails written as files.
    "dev_mail": PUBLIC,
    "dev_mail_message": PUBLIC,
    "dev_mail_html": PUBLIC,
    # Last: it signs the walker out.
    "logout": PUBLIC,
}
# Not the browser's: Stripe's webhook (its signature is its permission), static files, the
# OpenAPI schema.
# The private Atom feed of update advisories too: the token in its URL is its permission (404
# for everyone without a good one, tests/test_advisories.py), whoever is signed in.
NOT_WALKED = {"stripe_webhook", "static", "static/head", "portal_advisories_feed"}
# These call the payment provider (tests/test_payment_trust.py and tests/test_refunds.py call
# it for real): walked only by those the policy turns away before any call.
CALLS_PAYMENTS = {"order_pay", "staff_order_refund_resend"}


def expected(user: Any, rule: Rule, objects: dict[str, Any]) -> str:
    for action in rule.guards:
        if not policy.can(user, action):
            return "sign in" if user is None else "forbidden"
    obj = objects.get(rule.obj) if rule.obj else None
    if obj is not None and not policy.owns(user, obj):
        return "not found"
    if rule.action and not policy.can(user, rule.action, obj):
        return "forbidden"
    return "through"


def observed(name: str, response: Any) -> str:
    status = response.status_code
    location = response.headers.get("location", "")
    if status == 401 or (300 <= status < 400 and location.startswith("/login")):
        return "sign in"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "not found"
    assert status < 500, (name, status)
    return "through"


def walkable(app: Any) -> list[tuple[str, str, str]]:
    """(route name, method, path) of every route a browser may ask for."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            methods = handler.http_methods - {"OPTIONS", "HEAD"}
            if not methods or handler.name is None or handler.name in NOT_WALKED:
                continue
            if route.path.startswith("/schema"):
                continue
            found.extend((handler.name, method, route.path) for method in methods)
    return found


async def walkers(settings: Any) -> dict[str, tuple[Any, AsyncTestClient]]:
    """A signed-in client for every role (and the superuser of another company), each with
    an app instance of its own (one app's lifespan is for one client)."""
    from backend.app import create_app

    def new_client() -> AsyncTestClient:
        return AsyncTestClient(app=create_app(settings, db_pool=False, background_jobs=False))

    company_id, superuser_email = await make_company("Eget firma AS")
    _, other_email = await make_company("Annet firma AS")
    member_email = new_email("medlem")
    await User(
        email=member_email,
        name="Mona Medlem",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    ).save()
    emails = {"superuser": superuser_email, "member": member_email, "other company": other_email}
    for role in (Role.technician.value, Role.admin.value):
        emails[role] = new_email(role)
        await create_staff(email=emails[role], name=role, role=role, password=PASSWORD)
    clients: dict[str, tuple[Any, AsyncTestClient]] = {}
    visitor = new_client()
    await visitor.__aenter__()
    await visitor.get("/login")  # a CSRF cookie
    clients["visitor"] = (None, visitor)
    for who, email in emails.items():
        client = new_client()
        await client.__aenter__()
        assert (await login(client, email)).status_code == 303
        clients[who] = (await User.objects().get(User.email == email), client)
    return clients


async def own_objects(superuser: Any, technician: Any) -> dict[str, Any]:
    await catalog.seed_demo_catalog()
    ticket = await tickets.open_ticket(
        superuser, {"product": "inventor", "subject": "Låser seg", "description": "Ved lagring."}
    )
    entry = await tickets.log_time_from_form(
        technician, ticket, {"minutes": "15", "performed_on": "", "channel": "phone", "note": ""}
    )
    order = await orders.place_order(
        superuser, {"kind": "topup", "hours": "5", "products": ["inventor"]}
    )
    # Paid, so that its receipt exists (an unpaid order has none: 404 for everyone).
    await Order.update({Order.status: "paid", Order.paid_at: clock.now()}).where(
        Order.id == order.id
    )
    order = await Order.objects().get(Order.id == order.id)
    token, _ = await api_tokens.create_token(superuser, {"name": "Rapportserver"})
    # Not the walking member: the superuser's walk removes this one.
    member = User(
        email=new_email("fjernes"),
        name="Ola Objekt",
        role=Role.member.value,
        company=superuser.company,
        password_hash=hash_password(PASSWORD),
    )
    await member.save()
    invitation = await members.invite(superuser, {"email": new_email("invitert")})
    # A link of its own, for the invitation pages (the walk withdraws the one above).
    link_token = secrets.token_urlsafe(16)
    link = Invitation(
        company=superuser.company,
        email=new_email("lenke"),
        token_hash=members.hash_token(link_token),
        invited_by=superuser.id,
        expires_at=clock.now() + members.INVITATION_VALID,
    )
    await link.save()
    # A mail from an unknown sender, waiting in the staff inbox.
    mail = await inbound_mail.receive(
        b"From: ukjent@example.net\r\nSubject: Hei\r\nMessage-ID: <walk@example.net>\r\n\r\nHei",
        "ukjent@example.net",
    )
    # A screenshot on the ticket, so that its download and its thumbnail exist.
    [attachment] = await attachments.store(
        [attachments.IncomingFile("skjerm.png", "image/png", PNG)], ticket_id=ticket.id
    )
    # An advisory for a product the walking company has no agreement on.
    advisory = await advisories.publish(
        technician,
        {
            "product": "vault",
            "title": f"Vault 2027 Hotfix {secrets.token_hex(3)}",
            "verdict": "wait",
            "summary": "Vent.",
        },
    )
    return {
        "advisory": {"id": advisory.id},
        "member": {"company": superuser.company, "id": member.id},
        "invitation": {"company": superuser.company, "id": invitation.id},
        "link_token": link_token,
        "mail": {"id": mail.id},
        "ticket": ticket,
        "attachment": attachment,
        "token": {"company": superuser.company, "id": token.id},
        "order": order,
        "entry": {"company": entry.company, "id": entry.id},
        "company": {"company": superuser.company, "id": superuser.company},
        # The walking technician: the admin's empty forms (no reason) change nothing.
        "staff": {"id": technician.id},
        "product": {"id": (await Product.select(Product.id).first())["id"]},
    }


def written_mail(directory: Path) -> str:
    """A mail as the development sender writes it (for /dev/mail/{name}): its file name."""
    message = EmailMessage()
    message["Subject"] = "Kvittering"
    message.set_content("Takk for betalingen.")
    message.add_alternative("<p>Takk for betalingen.</p>", subtype="html")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "20261201-120000-00000001.eml").write_bytes(message.as_bytes())
    return "20261201-120000-00000001.eml"


def fill(path: str, objects: dict[str, Any]) -> str:
    ids = {
        "ticket_id": objects["ticket"].id,
        "attachment_id": objects["attachment"].id,
        "order_id": objects["order"].id,
        "request_id": 1,
        "entry_id": objects["entry"]["id"],
        "company_id": objects["company"]["id"],
        "token_id": objects["token"]["id"],
        "user_id": objects["member"]["id"],
        "staff_id": objects["staff"]["id"],
        "product_id": objects["product"]["id"],
        "invitation_id": objects["invitation"]["id"],
        # An invitation's link; to the reset and e-mail links it is a link that does not exist.
        "token": objects["link_token"],
        "number": tickets.ticket_number(objects["ticket"].id),
        "code": "en",
        "file_path": "app.js",
        "name": objects["written_mail"],
        "mail_id": objects["mail"]["id"],
        "advisory_id": objects["advisory"]["id"],
    }
    return re.sub(r"\{(\w+):\w+\}", lambda m: str(ids[m.group(1)]), path)


def test_every_route_is_in_the_policy_table(app):
    names = {name for name, _, _ in walkable(app)}
    assert names == set(ROUTES), "a new route needs its line in ROUTES (and maybe the policy)"


def test_every_action_in_the_table_is_a_policy_action():
    used = {a for r in ROUTES.values() for a in (*r.guards, r.action) if a}
    assert used <= set(policy.ACTIONS)


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (None, "view_company", False),
        (None, "manage_own_account", False),
        ("member", "manage_own_account", True),
        ("technician", "manage_own_account", True),
        ("superuser", "buy", True),
        ("member", "buy", False),
        ("superuser", "add_products", True),
        ("member", "add_products", False),
        ("admin", "add_products", False),
        ("member", "view_company", True),
        ("member", "reply", False),
        ("member", "manage_members", False),
        ("superuser", "manage_members", True),
        ("admin", "manage_members", False),
        ("technician", "buy", False),
        ("technician", "log_time", True),
        ("technician", "adjust_minutes", False),
        ("admin", "adjust_minutes", True),
        ("technician", "extend_expiry", False),
        ("superuser", "extend_expiry", False),
        ("admin", "extend_expiry", True),
        ("admin", "view_reports", True),
        ("technician", "view_reports", False),
        ("superuser", "view_reports", False),
        ("admin", "view_company", False),
        ("technician", "back_office", False),
        ("technician", "view_audit", False),
        ("technician", "manage_staff", False),
        ("superuser", "view_audit", False),
        ("admin", "back_office", True),
        ("admin", "view_audit", True),
        ("admin", "onboard_customers", True),
        ("technician", "onboard_customers", False),
        ("superuser", "onboard_customers", False),
        ("admin", "manage_staff", True),
        ("admin", "manage_companies", True),
        ("technician", "manage_companies", False),
        ("superuser", "manage_companies", False),
        ("admin", "refund", True),
        ("technician", "refund", False),
        ("technician", "publish_advisories", True),
        ("admin", "publish_advisories", True),
        ("superuser", "publish_advisories", False),
        ("member", "publish_advisories", False),
        (None, "publish_advisories", False),
        ("superuser", "follow_advisories", True),
        ("member", "follow_advisories", False),
        ("technician", "follow_advisories", False),
        ("superuser", "refund", False),
    ],
)
def test_the_policy_table_says_what_spec_section_1_says(role, action, allowed):
    user = None if role is None else User(role=role, company=1 if role in policy.COMPANY else None)
    assert policy.can(user, action) is allowed


def test_a_customer_acts_only_on_their_own_company_and_staff_on_every_one():
    superuser = User(role="superuser", company=1)
    technician = User(role="technician", company=None)
    assert policy.can(superuser, "reply", {"company": 1})
    assert not policy.can(superuser, "reply", {"company": 2})
    assert policy.can(technician, "reply", {"company": 2})


async def test_every_route_answers_every_role_as_the_policy_says(app, settings):
    clients = await walkers(settings)
    try:
        objects = await own_objects(clients["superuser"][0], clients["technician"][0])
        objects["written_mail"] = written_mail(settings.mail_dir)
        routes = sorted(walkable(app), key=lambda r: list(ROUTES).index(r[0]))
        mismatches = []
        for who, (user, client) in clients.items():
            token = client.cookies.get("csrftoken", "")
            for name, method, path in routes:
                url = fill(path, objects)
                want = expected(user, ROUTES[name], objects)
                if name in CALLS_PAYMENTS and want == "through":
                    continue
                if method == "GET":
                    response = await client.get(url, follow_redirects=False)
                else:
                    response = await client.request(
                        method, url, headers={"x-csrftoken": token}, follow_redirects=False
                    )
                got = observed(name, response)
                if got != want:
                    mismatches.append(
                        f"{who} {method} {url}: {got} ({response.status_code}), policy: {want}"
                    )
        assert not mismatches, "\n".join(mismatches)
    finally:
        for _, client in clients.values():
            await client.__aexit__(None, None, None)
