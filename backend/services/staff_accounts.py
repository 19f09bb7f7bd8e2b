"""The reseller's staff accounts (issue 12), managed by admins: create a technician or admin
(they get an invitation mail to choose their password), deactivate and reactivate them, and
reset their sign-in. Every change is one audit entry, in the change's own transaction.

- The invitation is a password link (account_links, the purpose a reset has, so the reset
  page sets the password), valid INVITATION_LIFETIME; until it is used the account has a
  password nobody knows.
- Deactivating ends the user's sessions and links; a deactivated user cannot sign in
  (users.authenticate). An admin cannot deactivate themselves, and the last active admin
  cannot be deactivated: someone must be left to run the back office.
- Resetting the sign-in ends the user's sessions and mails them a reset link
  (password_reset.send_link): for a stolen password or a lost device.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any

import msgspec

from backend.db import is_unique_violation, lock_row, write_transaction
from backend.i18n import N_
from backend.services import account_links, audit, outbox, password_reset, policy, users, validation
from backend.services.errors import NotFound, ValidationFailed
from backend.services.validation import FieldError
from backend.tables import AuditKind, BrowserSession, LinkPurpose, Role, User

INVITATION_LIFETIME = datetime.timedelta(days=7)
EMAIL_TAKEN = N_("Det finnes allerede en bruker med denne e-postadressen.")
NOT_YOURSELF = N_("Du kan ikke deaktivere deg selv.")
LAST_ADMIN = N_("Dette er den siste aktive administratoren, og kan ikke deaktiveres.")
ROLE_UNKNOWN = N_("Velg tekniker eller administrator.")
REASON_REQUIRED = N_("Skriv en begrunnelse.")


def _staff_role(value: str) -> str:
    if value not in users.STAFF_ROLES:
        raise FieldError(ROLE_UNKNOWN)
    return value


class NewStaff(msgspec.Struct):
    name: validation.line(200, required=N_("Skriv navnet."))
    email: validation.Email
    role: validation.field(str, max_length=20, message=ROLE_UNKNOWN, check=_staff_role)
    reason: validation.line(500, optional=True) = ""


class StaffChange(msgspec.Struct):
    """Deactivate, reactivate, reset sign-in: why."""

    reason: validation.line(500, required=REASON_REQUIRED)


async def list_staff() -> list[dict[str, Any]]:
    """Every technician and admin, admins first, then by name."""
    return await (
        User.select(User.id, User.name, User.email, User.role, User.active, User.last_login_at)
        .where(User.role.is_in(sorted(users.STAFF_ROLES)))
        .order_by(User.role)
        .order_by(User.name)
    )


async def create(admin: User, form: NewStaff) -> User:
    """A new technician or admin, mailed an invitation to choose their password."""
    policy.require(admin, "manage_staff")
    # A password nobody knows, until the invitation sets one (hashed outside the transaction).
    unknown = await users.hash_password_async(secrets.token_urlsafe(32))
    try:
        async with write_transaction(User._meta.db):
            if await User.exists().where(User.email == form.email):
                raise ValidationFailed({"email": EMAIL_TAKEN})
            user = User(email=form.email, name=form.name, role=form.role, password_hash=unknown)
            await user.save()
            link = await account_links.issue(
                user.id, LinkPurpose.password_reset, INVITATION_LIFETIME
            )
            await outbox.queue(
                user.email,
                "staff_invitation",
                {"user": user, "inviter": admin, "token": link.token},
                f"staff-invitation:{link.id}",
                language=users.language_of(user),
            )
            await audit.record(
                admin,
                AuditKind.staff_created,
                subject=f"user:{user.id}",
                after={"email": user.email, "name": user.name, "role": user.role},
                reason=form.reason,
            )
    except Exception as error:
        if not is_unique_violation(error):
            raise
        raise ValidationFailed({"email": EMAIL_TAKEN}) from None
    return user


async def get_staff(user_id: int) -> User:
    """The technician or admin with this id: NotFound for anyone else (a customer too)."""
    user = await User.objects().get(
        (User.id == user_id) & User.role.is_in(sorted(users.STAFF_ROLES))
    )
    if user is None:
        raise NotFound(f"no staff user {user_id}")
    return user


async def _end_sessions(user_id: int) -> None:
    await BrowserSession.delete().where(BrowserSession.user_id == user_id)


async def deactivate(admin: User, user_id: int, form: StaffChange) -> None:
    """The staff user can no longer sign in; their sessions and links end."""
    policy.require(admin, "manage_staff")
    if user_id == admin.id:
        raise ValidationFailed({"form": NOT_YOURSELF})
    async with write_transaction(User._meta.db):
        user = await get_staff(user_id)
        if not user.active:
            return  # already: a second click changes nothing and records nothing
        if user.role == Role.admin.value:
            # Two admins deactivating each other at once: one waits for the other.
            for other in await User.select(User.id).where(User.role == Role.admin.value):
                await lock_row(User, other["id"])
            others = await User.count().where(
                (User.role == Role.admin.value) & (User.active == True) & (User.id != user.id)  # noqa: E712
            )
            if others == 0:
                raise ValidationFailed({"form": LAST_ADMIN})
        await User.update({User.active: False}).where(User.id == user.id)
        await _end_sessions(user.id)
        await account_links.end_links_of(user.id)
        await audit.record(
            admin,
            AuditKind.staff_deactivated,
            subject=f"user:{user.id}",
            before={"active": True},
            after={"active": False},
            reason=form.reason,
        )


async def reactivate(admin: User, user_id: int, form: StaffChange) -> None:
    """The staff user can sign in again, with the password they had."""
    policy.require(admin, "manage_staff")
    async with write_transaction(User._meta.db):
        user = await get_staff(user_id)
        if user.active:
            return
        await User.update({User.active: True}).where(User.id == user.id)
        await audit.record(
            admin,
            AuditKind.staff_reactivated,
            subject=f"user:{user.id}",
            before={"active": False},
            after={"active": True},
            reason=form.reason,
        )


async def reset_sign_in(admin: User, user_id: int, form: StaffChange) -> None:
    """The staff user's sessions end and they are mailed a link to choose a new password."""
    policy.require(admin, "manage_staff")
    async with write_transaction(User._meta.db):
        user = await get_staff(user_id)
        await _end_sessions(user.id)
        await password_reset.send_link(user.email)
        await audit.record(
            admin, AuditKind.staff_sign_in_reset, subject=f"user:{user.id}", reason=form.reason
        )
