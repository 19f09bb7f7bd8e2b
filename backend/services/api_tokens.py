"""API tokens: keys the company's own systems use for the JSON API (controllers/api.py).

The rule:
- Only the company's superuser makes, lists and revokes its tokens (policy action
  `manage_api_tokens`); another company's token does not exist for them (NotFound).
- A token is a random secret (`spt_` and 32 random bytes, URL-safe) shown once, when it is
  made; the database keeps its SHA-256 (a secret that long needs no slow hash) and its first
  characters, to tell tokens apart in the list.
- A token counts only under /api/ (web/security.py). There it reads as a member of its
  company reads: the company's read rights (`view_company`, `view_ticket`, `view_order`),
  never more, whoever made it. It stops working at once when it is revoked, or when the user
  who made it is deactivated or leaves the company.
- When it was last used is written at most once a minute per token (LAST_USED_EVERY), so the
  API does not write on every request.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import secrets
from typing import Any

import msgspec

from backend.db import fetch, writing
from backend.i18n import N_
from backend.services import clock, policy, validation
from backend.services.errors import NotFound
from backend.tables import ApiToken, Role, User

SECRET_PREFIX = "spt_"
SHOWN_CHARACTERS = len(SECRET_PREFIX) + 8
LAST_USED_EVERY = datetime.timedelta(minutes=1)
# What token_urlsafe(32) gives: 43 characters of the URL-safe alphabet.
_SECRET = re.compile(rf"{SECRET_PREFIX}[A-Za-z0-9_-]{{43}}", re.ASCII)
_BEARER = re.compile(r"Bearer +(\S+) *", re.IGNORECASE | re.ASCII)


class NewToken(msgspec.Struct):
    name: validation.line(100, message=N_("Gi nøkkelen et navn på høyst 100 tegn."))


class TokenRow(msgspec.Struct, frozen=True):
    """A token as the list shows it: never its secret."""

    id: int
    name: str
    prefix: str
    created_at: datetime.datetime
    last_used_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    created_by_name: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def tokens_of(user: User) -> list[TokenRow]:
    """The company's tokens, newest first, revoked ones too (with when)."""
    policy.require(user, "manage_api_tokens")
    rows = (
        await ApiToken.select(
            ApiToken.id,
            ApiToken.name,
            ApiToken.prefix,
            ApiToken.created_at,
            ApiToken.last_used_at,
            ApiToken.revoked_at,
            ApiToken.created_by.name.as_alias("created_by_name"),
        )
        .where(ApiToken.company == user.company)
        .order_by(ApiToken.id, ascending=False)
    )
    return [TokenRow(**row) for row in rows]


async def create_token(user: User, values: dict[str, Any]) -> tuple[TokenRow, str]:
    """A new token for the user's company: the row and its secret, which is never shown again."""
    policy.require(user, "manage_api_tokens")
    form = validation.convert(values, NewToken)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        company=user.company,
        name=form.name,
        prefix=secret[:SHOWN_CHARACTERS],
        secret_hash=hash_secret(secret),
        created_by=user.id,
        created_at=clock.now(),
    )
    await token.save()
    row = TokenRow(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used_at=None,
        revoked_at=None,
        created_by_name=user.name,
    )
    return row, secret


async def revoke_token(user: User, token_id: int) -> None:
    """The token stops working at once. Twice is once."""
    policy.require(user, "manage_api_tokens")
    token = await ApiToken.objects().get(ApiToken.id == token_id)
    if token is None or not policy.owns(user, token):
        raise NotFound("no such token for this user")
    async with writing(ApiToken._meta.db):
        await ApiToken.update({ApiToken.revoked_at: clock.now()}).where(
            (ApiToken.id == token_id) & ApiToken.revoked_at.is_null()
        )


def bearer_secret(header: str) -> str | None:
    """The secret of an `Authorization: Bearer spt_…` header, or None for anything else."""
    match = _BEARER.fullmatch(header)
    if match is None or not _SECRET.fullmatch(match.group(1)):
        return None
    return match.group(1)


# The user's columns come as they are (`u.*`), so the token's own are renamed.
_TOKEN_USER = (
    "SELECT t.id AS token_id, t.last_used_at AS token_last_used_at, u.*"
    " FROM api_token AS t JOIN portal_user AS u"
    " ON u.id = t.created_by AND u.active AND u.company = t.company"
    " JOIN company AS c ON c.id = t.company AND c.active"
    " WHERE t.secret_hash = {} AND t.revoked_at IS NULL"
)


async def authenticate(header: str) -> User | None:
    """Whom an Authorization header speaks for, by the rule above: a member of the token's
    company, or None (no such token, revoked, its maker deactivated, or not a bearer token)."""
    secret = bearer_secret(header)
    if secret is None:
        return None
    rows = await fetch(User, _TOKEN_USER, hash_secret(secret))
    if not rows:
        return None
    row = dict(rows[0])
    token_id = row.pop("token_id")
    await _note_use(token_id, row.pop("token_last_used_at"))
    row["role"] = Role.member.value
    return User(**row, _exists_in_db=True)


async def _note_use(token_id: int, last_used_at: datetime.datetime | None) -> None:
    now = clock.now()
    if last_used_at is not None and now - last_used_at < LAST_USED_EVERY:
        return
    async with writing(ApiToken._meta.db):
        # Several requests at once may all find it due: the condition lets one write.
        await ApiToken.update({ApiToken.last_used_at: now}).where(
            (ApiToken.id == token_id)
            & (ApiToken.last_used_at.is_null() | (ApiToken.last_used_at < now - LAST_USED_EVERY))
        )
