"""A company's people (SPEC §1, issue 11): the superuser invites colleagues as members, removes
them, and hands the superuser role to one of them.

Rules:
- An invitation is a single-use link, valid INVITATION_VALID after it was sent; only the SHA-256
  of its token is kept. Resending gives it a new token (the old link stops working at once) and
  a new expiry; withdrawing ends it. The invitee, signed out, sets name, phone and password (as
  at registration) and becomes an active member, signed in. An address that has an account
  already is told so: one address, one user.
- A removed member is deactivated, not deleted (the tickets and messages they wrote keep their
  author): their sessions end at once, they cannot sign in, and the API tokens they made stop
  working (api_tokens.authenticate reads only active makers).
- There is exactly one superuser per company, always: a partial unique index on
  portal_user(company) WHERE role = 'superuser' holds it in the database. A hand-over, confirmed
  with the superuser's own password, demotes the superuser and then promotes the member in one
  write transaction; the demotion is conditional (still the superuser?), so of two hand-overs
  at once one wins and the other is told the role has already been handed over.
- Each of these mails is queued in the transaction of its cause: a refused action sends none.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from backend.db import is_unique_violation, write_transaction
from backend.i18n import N_, current_language
from backend.services import clock, outbox, policy, users, validation
from backend.services.errors import NotFound, ValidationFailed
from backend.tables import BrowserSession, Company, Invitation, Role, User

INVITATION_VALID = datetime.timedelta(days=7)

ACCOUNT_EXISTS = N_(
    "Det finnes allerede en bruker med denne e-postadressen. En adresse kan bare høre til én"
    " bruker."
)
ALREADY_INVITED = N_(
    "Denne adressen er allerede invitert. Send invitasjonen på nytt i listen nedenfor."
)
INVITATION_GONE = N_(
    "Invitasjonen er ikke gyldig lenger (brukt, utløpt eller trukket tilbake). Be superbrukeren"
    " om en ny."
)
ALREADY_HANDED_OVER = N_(
    "Superbrukerrollen er allerede gitt videre. Du er ikke lenger superbruker, og ingenting er"
    " endret."
)
WRONG_PASSWORD = N_("Passordet er feil. Superbrukerrollen er ikke gitt videre.")


class NewInvitation(msgspec.Struct):
    email: validation.Email


class AcceptInvitation(msgspec.Struct):
    """What the invitee fills in: the rules registration has for the same fields."""

    name: validation.line(200)
    phone: validation.Phone
    password: validation.Password
    password_confirm: validation.PasswordConfirmation

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> dict[str, str]:
        return validation.passwords_match(values, "password", "password_confirm")


class HandOver(msgspec.Struct):
    # Only its length: a wrong password is told as one, whatever was typed.
    password: validation.field(
        str, max_length=1024, min_length=1, required=N_("Skriv inn passordet ditt.")
    )


@dataclass(frozen=True)
class PendingInvitation:
    id: int
    email: str
    invited_by_name: str
    sent_at: datetime.datetime
    expires_at: datetime.datetime
    expired: bool


@dataclass(frozen=True)
class People:
    """The members page: the company's active users (the superuser first) and, for the
    superuser, the invitations not yet accepted or withdrawn."""

    users: list[User]
    invitations: list[PendingInvitation]


@dataclass(frozen=True)
class OpenInvitation:
    """An invitation whose link still works, as its page shows it."""

    invitation: Invitation
    company_name: str
    invited_by_name: str
    account_exists: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _is_open() -> Any:
    return Invitation.accepted_at.is_null() & Invitation.withdrawn_at.is_null()


# --- reading ---------------------------------------------------------------------------------


async def people_of(user: User) -> People:
    policy.require(user, "view_company")
    found = await (
        User.objects()
        .where((User.company == user.company) & (User.active == True))  # noqa: E712
        .order_by(User.name)
    )
    found.sort(key=lambda person: person.role != Role.superuser.value)
    pending: list[PendingInvitation] = []
    if policy.can(user, "manage_members"):
        now = clock.now()
        rows = await (
            Invitation.select(
                Invitation.id,
                Invitation.email,
                Invitation.invited_by.name.as_alias("invited_by_name"),
                Invitation.sent_at,
                Invitation.expires_at,
            )
            .where((Invitation.company == user.company) & _is_open())
            .order_by(Invitation.sent_at, ascending=False)
        )
        pending = [PendingInvitation(**row, expired=row["expires_at"] <= now) for row in rows]
    return People(users=found, invitations=pending)


async def open_invitation(token: str) -> OpenInvitation | None:
    """The invitation this link's token names, if it can still be accepted; else None."""
    rows = await (
        Invitation.select(
            Invitation.all_columns(),
            Invitation.company.name.as_alias("company_name"),
            Invitation.invited_by.name.as_alias("invited_by_name"),
        )
        .where(
            (Invitation.token_hash == hash_token(token))
            & _is_open()
            & (Invitation.expires_at > clock.now())
        )
        .first()
    )
    if rows is None:
        return None
    company_name = rows.pop("company_name")
    invited_by_name = rows.pop("invited_by_name")
    invitation = Invitation(**rows, _exists_in_db=True)
    return OpenInvitation(
        invitation=invitation,
        company_name=company_name,
        invited_by_name=invited_by_name,
        account_exists=await User.exists().where(User.email == invitation.email),
    )


# --- the superuser's actions -----------------------------------------------------------------


async def invite(superuser: User, values: dict[str, Any]) -> Invitation:
    """Invite a colleague by e-mail; the mail with the link is queued with the invitation."""
    policy.require(superuser, "manage_members")
    form = validation.convert(values, NewInvitation)
    if await User.exists().where(User.email == form.email):
        raise ValidationFailed({"email": ACCOUNT_EXISTS}, values)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    invitation = Invitation(
        company=superuser.company,
        email=form.email,
        token_hash=hash_token(token),
        invited_by=superuser.id,
        created_at=now,
        sent_at=now,
        expires_at=now + INVITATION_VALID,
    )
    try:
        async with write_transaction(Invitation._meta.db):
            # The same address invited twice at once: the partial unique index keeps one.
            await invitation.save()
            await _queue_invitation_mail(superuser, invitation, token)
    except Exception as error:
        if is_unique_violation(error):
            raise ValidationFailed({"email": ALREADY_INVITED}, values) from None
        raise
    return invitation


async def resend(superuser: User, invitation_id: int) -> None:
    """A new link for an invitation not yet accepted or withdrawn (expired or not), valid from
    now; the old link stops working."""
    policy.require(superuser, "manage_members")
    token = secrets.token_urlsafe(32)
    now = clock.now()
    async with write_transaction(Invitation._meta.db):
        rows = await (
            Invitation.update(
                {
                    Invitation.token_hash: hash_token(token),
                    Invitation.sent_at: now,
                    Invitation.expires_at: now + INVITATION_VALID,
                }
            )
            .where(
                (Invitation.id == invitation_id)
                & (Invitation.company == superuser.company)
                & _is_open()
            )
            .returning(*Invitation.all_columns())
        )
        if not rows:
            raise NotFound("no such invitation")
        await _queue_invitation_mail(superuser, Invitation(**rows[0], _exists_in_db=True), token)


async def withdraw(superuser: User, invitation_id: int) -> None:
    """The invitation's link stops working. An accepted or withdrawn one is not found."""
    policy.require(superuser, "manage_members")
    async with write_transaction(Invitation._meta.db):
        withdrawn = await (
            Invitation.update({Invitation.withdrawn_at: clock.now()})
            .where(
                (Invitation.id == invitation_id)
                & (Invitation.company == superuser.company)
                & _is_open()
            )
            .returning(Invitation.id)
        )
    if not withdrawn:
        raise NotFound("no such invitation")


async def _queue_invitation_mail(inviter: User, invitation: Invitation, token: str) -> None:
    company = await Company.objects().get(Company.id == invitation.company)
    await outbox.queue(
        invitation.email,
        "invitation",
        {
            "company_name": company.name,
            "inviter_name": inviter.name,
            "inviter_email": inviter.email,
            "link": f"{outbox.letterhead().portal_url}/invitation/{token}",
            "expires_at": invitation.expires_at,
        },
        # One mail per link: a resend (a new token) is a new cause.
        key=f"invitation:{invitation.id}:{invitation.token_hash[:16]}",
        language=users.language_of(inviter),
    )


async def remove_member(superuser: User, user_id: int) -> None:
    """Deactivate an active member of the superuser's company and end their sessions."""
    policy.require(superuser, "manage_members")
    async with write_transaction(User._meta.db):
        removed = await (
            User.update({User.active: False})
            .where(
                (User.id == user_id)
                & (User.company == superuser.company)
                & (User.role == Role.member.value)
                & (User.active == True)  # noqa: E712
            )
            .returning(User.id)
        )
        if not removed:
            raise NotFound("no such member")
        await BrowserSession.delete().where(BrowserSession.user_id == user_id)


async def _active_member(superuser: User, user_id: int) -> User:
    member = await User.objects().get(
        (User.id == user_id)
        & (User.company == superuser.company)
        & (User.role == Role.member.value)
        & (User.active == True)  # noqa: E712
    )
    if member is None:
        raise NotFound("no such member")
    return member


async def hand_over(superuser: User, user_id: int, values: dict[str, Any], *, ip: str) -> User:
    """Give the superuser role to an active member, confirmed with the superuser's own current
    password (checked under the sign-in throttle); the superuser becomes a member. Both get a
    mail, each in their own language. Returns the new superuser."""
    policy.require(superuser, "manage_members")
    # Whose member it is comes before what was typed: another company's id is not found.
    member = await _active_member(superuser, user_id)
    form = validation.convert(values, HandOver)
    await users.check_current_password(
        superuser, form.password, ip=ip, wrong=WRONG_PASSWORD, field="password"
    )
    await swap_superuser(superuser, member)
    return member


async def swap_superuser(
    superuser: User, member: User, then: Callable[[], Awaitable[None]] | None = None
) -> None:
    """The one rule for moving the superuser role (the superuser's hand-over and an admin's
    move, issue 12): in one write transaction demote `superuser` (if still the company's
    active superuser), then promote `member` (if still its active member), queue both mails
    and run `then` (e.g. the audit entry). ALREADY_HANDED_OVER or NotFound otherwise."""
    try:
        async with write_transaction(User._meta.db):
            # Demote first, then promote: the one-superuser index holds after each statement.
            demoted = await (
                User.update({User.role: Role.member.value})
                .where(
                    (User.id == superuser.id)
                    & (User.company == superuser.company)
                    & (User.role == Role.superuser.value)
                    & (User.active == True)  # noqa: E712
                )
                .returning(User.id)
            )
            if not demoted:
                # Handed over meanwhile (another tab, another browser): the form shown again
                # shows what this user now is, a member.
                superuser.role = Role.member.value
                raise ValidationFailed({"form": ALREADY_HANDED_OVER}, {})
            promoted = await (
                User.update({User.role: Role.superuser.value})
                .where(
                    (User.id == member.id)
                    & (User.company == superuser.company)
                    & (User.role == Role.member.value)
                    & (User.active == True)  # noqa: E712
                )
                .returning(User.id)
            )
            if not promoted:
                raise NotFound("no such member")
            await _queue_hand_over_mails(superuser, member)
            if then is not None:
                await then()
    except Exception as error:
        if is_unique_violation(error):
            raise ValidationFailed({"form": ALREADY_HANDED_OVER}, {}) from None
        raise
    superuser.role = Role.member.value
    member.role = Role.superuser.value


async def _queue_hand_over_mails(old: User, new: User) -> None:
    company = await Company.objects().get(Company.id == old.company)
    context = {"company_name": company.name, "old_name": old.name, "new_name": new.name}
    cause = f"handover:{old.id}:{new.id}:{clock.now().isoformat()}"
    for person, template in ((old, "handover_given"), (new, "handover_received")):
        await outbox.queue(
            person.email,
            template,
            context,
            key=f"{cause}:{person.id}",
            language=users.language_of(person),
        )


# --- the invitee -------------------------------------------------------------------------------


async def accept(token: str, values: dict[str, Any]) -> User:
    """The invitee becomes an active member of the inviting company (to be signed in)."""
    form = validation.convert(values, AcceptInvitation)
    opened = await open_invitation(token)
    if opened is None:
        raise ValidationFailed({"form": INVITATION_GONE}, values)
    if opened.account_exists:
        raise ValidationFailed({"form": ACCOUNT_EXISTS}, values)
    invitation = opened.invitation
    # Before the transaction: SQLite's write lock would be held for the whole hash.
    password_hash = await users.hash_password_async(form.password)
    now = clock.now()
    try:
        async with write_transaction(User._meta.db):
            # Single use: of two acceptances at once, one takes it.
            taken = await (
                Invitation.update({Invitation.accepted_at: now})
                .where(
                    (Invitation.id == invitation.id)
                    & (Invitation.token_hash == hash_token(token))
                    & _is_open()
                    & (Invitation.expires_at > now)
                )
                .returning(Invitation.id)
            )
            if not taken:
                raise ValidationFailed({"form": INVITATION_GONE}, values)
            member = User(
                email=invitation.email,
                name=form.name,
                phone=form.phone,
                role=Role.member.value,
                company=invitation.company,
                password_hash=password_hash,
                language=current_language.get(),
            )
            await member.save()
            await Invitation.update({Invitation.accepted_by: member.id}).where(
                Invitation.id == invitation.id
            )
    except Exception as error:
        if is_unique_violation(error):
            raise ValidationFailed({"form": ACCOUNT_EXISTS}, values) from None
        raise
    return member
