"""Single-use links mailed to a user (issue 11): a password reset, an e-mail change.

A link carries a random token (32 bytes, URL-safe); the database keeps only its SHA-256, so
a copy of the table opens nothing. A link works once, until it expires, for its own purpose
only, and only while its user is active. Issuing a link replaces the user's earlier links of
the same purpose (the newest mail is the one that works), and using one ends them all.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from backend.services import clock
from backend.tables import AccountLink, LinkPurpose, User

# Longer than any token issued: a path that long is no token, and is not hashed.
MAX_TOKEN_LENGTH = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    """An issued link: the token (for the mail, never stored) and its row's id."""

    token: str
    id: int


async def issue(
    user_id: int, purpose: LinkPurpose, lifetime: datetime.timedelta, *, new_email: str = ""
) -> Link:
    """A new link for the user, inside the caller's transaction; earlier unused links of the
    same purpose stop working, and links that ended long ago are forgotten."""
    now = clock.now()
    await AccountLink.update({AccountLink.used_at: now}).where(
        (AccountLink.user == user_id)
        & (AccountLink.purpose == purpose.value)
        & AccountLink.used_at.is_null()
    )
    await AccountLink.delete().where(AccountLink.expires_at < now - datetime.timedelta(days=30))
    token = secrets.token_urlsafe(32)
    rows = await AccountLink.insert(
        AccountLink(
            token_hash=token_hash(token),
            purpose=purpose.value,
            user=user_id,
            new_email=new_email,
            expires_at=now + lifetime,
        )
    ).returning(AccountLink.id)
    return Link(token=token, id=rows[0]["id"])


def _usable(token: str, purpose: LinkPurpose) -> Any:
    return (
        (AccountLink.token_hash == token_hash(token))
        & (AccountLink.purpose == purpose.value)
        & AccountLink.used_at.is_null()
        & (AccountLink.expires_at > clock.now())
    )


async def find(token: str, purpose: LinkPurpose) -> tuple[AccountLink, User] | None:
    """The link and its (active) user, if the link can still be used; it stays unused."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    link = await AccountLink.objects().get(_usable(token, purpose))
    if link is None:
        return None
    user = await User.objects().get((User.id == link.user) & (User.active == True))  # noqa: E712
    return None if user is None else (link, user)


async def use(token: str, purpose: LinkPurpose) -> tuple[AccountLink, User] | None:
    """Inside the caller's write transaction: the link, marked used, and its active user, or
    None if it cannot be used (unknown, used, replaced, expired, another purpose). One
    conditional update: of two requests with the same link, one gets it. Every other link
    of the user, of either purpose, ends with it."""
    found = await find(token, purpose)
    if found is None:
        return None
    link, user = found
    now = clock.now()
    taken = await (
        AccountLink.update({AccountLink.used_at: now})
        .where(_usable(token, purpose) & (AccountLink.id == link.id))
        .returning(AccountLink.id)
    )
    if not taken:
        return None
    await end_links_of(user.id)
    return link, user


async def end_links_of(user_id: int) -> None:
    """Inside the caller's transaction: no link mailed to the user works any longer (their
    password or address has changed: what the links were sent for is decided)."""
    await AccountLink.update({AccountLink.used_at: clock.now()}).where(
        (AccountLink.user == user_id) & AccountLink.used_at.is_null()
    )
