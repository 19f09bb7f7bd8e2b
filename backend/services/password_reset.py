"""A forgotten password (issue 11): "Glemt passord?" mails a reset link, the link sets a new
password.

- The answer to "send me a link" is the same whether or not the address has an account, and
  it is given before anyone looks: the request is throttled and checked for its form only
  (`ask_for_link`), and the link is made and mailed afterwards (`send_link`, the route's
  background task), so neither the answer nor the time it takes tells whether the address
  exists.
- Only an active user gets a link. It works once, for RESET_LIFETIME, and only the newest
  one the user asked for works (account_links).
- Setting the new password ends every session of the user and every link mailed to them, and
  they are told by mail (users.replace_password).
- At most FORGOT_PER_ADDRESS requests per e-mail address and FORGOT_PER_CLIENT per client
  address in FORGOT_WINDOW (users.LoginThrottle's counters, a kind of their own): the next is
  refused (TooManyAttempts) and sends nothing.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

import msgspec

from backend.db import write_transaction
from backend.i18n import N_
from backend.services import account_links, outbox, users, validation
from backend.services.errors import ValidationFailed
from backend.services.users import LoginThrottle, TooManyAttempts
from backend.tables import LinkPurpose, User

logger = logging.getLogger("portal.password_reset")

RESET_LIFETIME = datetime.timedelta(hours=1)
FORGOT_PER_ADDRESS = 5
FORGOT_PER_CLIENT = 20
FORGOT_WINDOW = 3600  # seconds

TOO_MANY_REQUESTS = N_("For mange forespørsler om nytt passord. Vent en time før du prøver igjen.")
LINK_NOT_VALID = N_(
    "Lenken virker ikke lenger: den er allerede brukt, den er utløpt (en lenke varer i én"
    " time), eller du har bedt om en nyere. Be om en ny lenke."
)


class ForgotPassword(msgspec.Struct):
    email: validation.Email


class PasswordReset(msgspec.Struct):
    # The rules registration and a password change have.
    new_password: validation.Password
    new_password_confirm: validation.PasswordConfirmation

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> dict[str, str]:
        return validation.passwords_match(values, "new_password", "new_password_confirm")


def forgot_throttle() -> LoginThrottle:
    return LoginThrottle(
        limit=FORGOT_PER_ADDRESS,
        ip_limit=FORGOT_PER_CLIENT,
        window=FORGOT_WINDOW,
        prefix="reset-",
    )


async def ask_for_link(
    form: ForgotPassword, *, ip: str, throttle: LoginThrottle | None = None
) -> None:
    """Count the request against the address and the client: TooManyAttempts (nothing is
    sent) over either's limit. It does not look the address up: `send_link` does, later."""
    try:
        await (throttle or forgot_throttle()).reserve(form.email, ip)
    except TooManyAttempts:
        raise TooManyAttempts(TOO_MANY_REQUESTS) from None


async def send_link(email: str) -> bool:
    """Mail a reset link to the active user with this (normalised) address, if there is one;
    their earlier reset links stop working. Whether one was sent is for tests and logs only,
    never for the visitor."""
    user = await User.objects().get((User.email == email) & (User.active == True))  # noqa: E712
    if user is None:
        return False
    async with write_transaction(User._meta.db):
        link = await account_links.issue(user.id, LinkPurpose.password_reset, RESET_LIFETIME)
        await outbox.queue(
            user.email,
            "password_reset",
            {"user": user, "token": link.token},
            f"password-reset:{link.id}",
            language=users.language_of(user),
        )
    return True


async def send_link_after_answering(email: str) -> None:
    """send_link, run once the visitor has had the answer: a failure can no longer reach them
    (they may ask again), so it goes to the log."""
    try:
        await send_link(email)
    except Exception:
        logger.exception("a reset link could not be made or queued")


async def user_of_link(token: str) -> User | None:
    """The user a reset link is for, while it can be used (it stays unused)."""
    found = await account_links.find(token, LinkPurpose.password_reset)
    return None if found is None else found[1]


async def reset_password(token: str, form: PasswordReset) -> User:
    """The new password of the link's user; the link is used up. A link that cannot be used
    (used, replaced, expired, unknown, a deactivated user's) is ValidationFailed."""
    if await user_of_link(token) is None:
        raise ValidationFailed({"form": LINK_NOT_VALID})
    # Before the transaction: SQLite's write lock would be held for the whole hash.
    password_hash = await users.hash_password_async(form.new_password)
    async with write_transaction(User._meta.db):
        # Again, atomically: of two requests with the same link, one sets its password.
        found = await account_links.use(token, LinkPurpose.password_reset)
        if found is None:
            raise ValidationFailed({"form": LINK_NOT_VALID})
        _, user = found
        await users.replace_password(user, password_hash)
    return user
