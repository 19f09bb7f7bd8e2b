"""A colleague joins, in real browsers: the superuser invites a colleague from the company page;
the invitation arrives at the run's SMTP server (sent by the served portal's own sender); the
colleague, in a browser of their own, follows the link from that mail, chooses name, phone and
password, lands signed in on the portal, reads the statement and is offered nothing to buy."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import assert_no_console_errors, run_in_new_loop, sign_in
from tests.support import make_company, new_email

pytestmark = pytest.mark.browser

LINK = re.compile(r"https?://[^\s/]+(/invitation/[A-Za-z0-9_-]+)")
MAIL_WAIT_SECONDS = 30  # the served portal's sender looks for due mail every 5 s


async def seed_company() -> str:
    from backend.services.catalog import seed_demo_catalog

    await seed_demo_catalog()
    _, email = await make_company(f"Kollegareise {secrets.token_hex(3)} AS")
    return email


def invitation_path(smtp: Any, email: str) -> str:
    """The link's path in the invitation mail that reached the SMTP server for `email`."""
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    while not (found := smtp.messages_to(email)):
        assert time.monotonic() < deadline, f"no invitation mail to {email}"
        time.sleep(0.2)
    [message] = found
    assert "inviterer deg til Kollegareise" in message["Subject"]
    match = LINK.search(message.get_body(("plain",)).get_content())
    assert match, "no link in the invitation mail"
    return match.group(1)


def test_a_colleague_joins_from_the_mailed_link_and_sees_the_statement_but_cannot_buy(
    page: Page,
    staff_page: Page,
    live_server: str,
    console_errors: list[str],
    smtp: Any,
    screenshot_dir: Path,
) -> None:
    superuser_email = run_in_new_loop(seed_company())
    colleague = new_email("kollega")

    # 1. The superuser invites a colleague from the company page.
    sign_in(page, live_server, superuser_email)
    page.goto("/portal/company")
    page.get_by_role("link", name="Inviter, fjern og se firmaets brukere").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Brukere")
    form = page.locator("#invitation-form")
    form.locator('[name="email"]').fill(colleague)
    form.get_by_role("button", name="Send invitasjon").click()
    expect(page.get_by_role("status")).to_have_text(f"Invitasjonen er sendt til {colleague}.")
    expect(page.locator("#members")).to_contain_text("Invitasjoner som venter")
    expect(page.locator(f"#members tr:has-text('{colleague}')")).to_be_visible()
    page.screenshot(path=screenshot_dir / "members-invited.png", full_page=True)

    # 2. The colleague follows the link in the mail, in a browser of their own.
    member = staff_page
    member.goto(invitation_path(smtp, colleague))
    expect(member.get_by_role("heading", level=1)).to_contain_text("Bli med i Kollegareise")
    accept = member.locator("#invitation-accept-form")
    accept.locator('[name="name"]').fill("Kari Kollega")
    accept.locator('[name="phone"]').fill("922 33 444")
    accept.locator('[name="password"]').fill("kollegaens-passord-1")
    accept.locator('[name="password_confirm"]').fill("kollegaens-passord-1")
    member.screenshot(path=screenshot_dir / "invitation.png", full_page=True)
    accept.get_by_role("button", name="Bli medlem").click()
    expect(member).to_have_url(f"{live_server}/portal")

    # 3. The member reads the statement, and nothing offers a purchase.
    for path in ("/portal", "/portal/usage", "/portal/account"):
        member.goto(path)
        expect(member.get_by_role("link", name="Fyll på tidskontoen")).to_have_count(0)
        expect(member.get_by_role("link", name="Forny Fri support")).to_have_count(0)
    member.goto("/portal/usage")
    expect(member.get_by_role("heading", level=1)).to_have_text("Forbruk")
    member.goto("/portal/topup")
    expect(member.get_by_role("button", name="Gå til betaling")).to_have_count(0)

    # 4. The superuser's list now has the member, and no invitation waits.
    page.goto("/portal/company/members")
    expect(page.locator("#members")).to_contain_text("Kari Kollega")
    expect(page.locator("#members")).to_contain_text("Ingen invitasjoner venter.")
    assert_no_console_errors(console_errors)


async def seed_members_page() -> tuple[str, str]:
    """A company with a member and a pending invitation: (superuser e-mail, the link's token)."""
    from backend.services import clock, members
    from backend.services.users import hash_password
    from backend.tables import Invitation, Role, User

    company_id, email = await make_company(f"Tilgjengelige brukere {secrets.token_hex(3)} AS")
    superuser = await User.objects().get(User.email == email)
    await User(
        email=new_email("medlem"),
        name="Mona Medlem",
        phone="+4722334466",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password("medlemmets-passord-1"),
    ).save()
    token = secrets.token_urlsafe(32)
    await Invitation(
        company=company_id,
        email=new_email("invitert"),
        token_hash=members.hash_token(token),
        invited_by=superuser.id,
        expires_at=clock.now() + members.INVITATION_VALID,
    ).save()
    return email, token


def test_the_members_page_and_the_invitation_are_accessible(
    axe_page: Page, live_server: str
) -> None:
    from tests.browser.test_accessibility import assert_accessible

    page = axe_page
    email, token = run_in_new_loop(seed_members_page())
    sign_in(page, live_server, email)
    page.goto("/portal/company/members")
    row = page.locator("#members tr:has-text('Mona Medlem')")
    row.get_by_text("Gjør til superbruker…").click()
    row.get_by_label("Ditt passord").fill("ikke-passordet-1")
    row.get_by_role("button", name="Gi superbrukerrollen til Mona Medlem").click()
    expect(page.locator("#members .field-error")).to_have_text(
        "Passordet er feil. Superbrukerrollen er ikke gitt videre."
    )
    assert_accessible(page, "the members page with a wrong password")

    page.goto(f"/invitation/{token}")
    expect(page.get_by_role("button", name="Bli medlem")).to_be_visible()
    assert_accessible(page, "the invitation page")
