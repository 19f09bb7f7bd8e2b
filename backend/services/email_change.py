"""A signed-in user's new e-mail address (issue 11), confirmed from the new address.

- Asking takes the current password (checked under the sign-in throttle, as a password change
  does) and an address no other account has. A confirmation link goes to the new address, and
  the old address is told that a change was asked for (and to contact support if that was not
  them), both in the user's language, in the transaction that makes the link.
- Nothing changes until the link is used. It works once, for CONFIRM_LIFETIME, only the
  newest one asked for works, and only for its own user: opened in a browser signed in as
  someone else, it does nothing.
- On confirming, the address is checked again (another account may have taken it meanwhile;
  the unique index decides a race). The user's sessions all end, and every other link mailed
  to them (a reset link sent to the old address) stops working.
"""

from __future__ import annotations

import datetime

import msgspec

from backend.db import is_unique_violation, write_transaction
from backend.i18n import N_
from backend.services import account_links, outbox, users, validation
from backend.services.errors import ValidationFailed
from backend.services.users import LoginThrottle
from backend.tables import BrowserSession, LinkPurpose, User

CONFIRM_LIFETIME = datetime.timedelta(hours=24)

WRONG_PASSWORD = N_("Passordet er feil. E-postadressen din er ikke endret.")
SAME_ADDRESS = N_("Dette er allerede e-postadressen din.")
ADDRESS_TAKEN = N_("Det finnes allerede en bruker med denne e-postadressen.")
TAKEN_MEANWHILE = N_(
    "En annen konto har tatt i bruk denne e-postadressen. E-postadressen din er ikke endret."
)
LINK_NOT_VALID = N_(
    "Lenken virker ikke lenger: den er allerede brukt, den er utløpt (en lenke varer i 24"
    " timer), eller du har bedt om en nyere. Be om endringen på nytt."
)
ANOTHER_USERS_LINK = N_(
    "Lenken gjelder en annen bruker enn den som er logget inn her. Logg ut og åpne lenken igjen."
)


class EmailChange(msgspec.Struct):
    new_email: validation.Email
    # Only its length: a wrong password is told as one, whatever was typed.
    current_password: validation.field(
        str, max_length=1024, min_length=1, required=N_("Skriv inn passordet du har nå.")
    )


class EmailConfirmation(msgspec.Struct):
    """The confirmation page's button: it posts nothing but its CSRF token."""


async def _taken(email: str, user_id: int) -> bool:
    return await User.exists().where((User.email == email) & (User.id != user_id))


async def ask_for_change(
    user: User, form: EmailChange, *, ip: str, throttle: LoginThrottle | None = None
) -> None:
    """Mail a confirmation link to the new address and a notice to the old one; earlier
    confirmation links of the user stop working. The address itself is not changed yet."""
    await users.check_current_password(
        user, form.current_password, ip=ip, wrong=WRONG_PASSWORD, throttle=throttle
    )
    if form.new_email == user.email:
        raise ValidationFailed({"new_email": SAME_ADDRESS})
    if await _taken(form.new_email, user.id):
        raise ValidationFailed({"new_email": ADDRESS_TAKEN})
    language = users.language_of(user)
    context = {"user": user, "new_email": form.new_email}
    async with write_transaction(User._meta.db):
        link = await account_links.issue(
            user.id, LinkPurpose.email_change, CONFIRM_LIFETIME, new_email=form.new_email
        )
        await outbox.queue(
            form.new_email,
            "email_change_confirm",
            {**context, "token": link.token},
            f"email-change:{link.id}",
            language=language,
        )
        await outbox.queue(
            user.email,
            "email_change_notice",
            context,
            f"email-change-notice:{link.id}",
            language=language,
        )


async def pending_link(token: str) -> tuple[User, str] | None:
    """The user a confirmation link is for and the address it moves them to, while the link
    can be used (it stays unused)."""
    found = await account_links.find(token, LinkPurpose.email_change)
    return None if found is None else (found[1], found[0].new_email)


async def confirm_change(token: str, signed_in: User | None) -> User:
    """The link's user, with the address the link names; the link is used up and every
    session of the user ends (the caller signs this browser in again if it was theirs).
    ValidationFailed if the link cannot be used, is another user's than the one `signed_in`
    here, or its address has been taken meanwhile."""
    try:
        async with write_transaction(User._meta.db):
            found = await account_links.use(token, LinkPurpose.email_change)
            if found is None:
                raise ValidationFailed({"form": LINK_NOT_VALID})
            link, user = found
            # Raised inside: the link is not used up by a browser it was not for.
            if signed_in is not None and signed_in.id != user.id:
                raise ValidationFailed({"form": ANOTHER_USERS_LINK})
            if await _taken(link.new_email, user.id):
                raise ValidationFailed({"form": TAKEN_MEANWHILE})
            await User.update({User.email: link.new_email}).where(User.id == user.id)
            await BrowserSession.delete().where(BrowserSession.user_id == user.id)
    except Exception as error:
        # Taken between the look and the update: the unique index refused it.
        if is_unique_violation(error):
            raise ValidationFailed({"form": TAKEN_MEANWHILE}) from None
        raise
    user.email = link.new_email
    return user
