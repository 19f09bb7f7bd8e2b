"""Server-side sessions in the database, that cannot be fixed by an attacker.

Litestar's stock backend keeps whatever session id the incoming cookie carries, so an id
planted before sign-in would survive it. This backend only accepts ids the database knows,
issues a fresh id when the handler cleared the session (sign-in, sign-out), deletes the old
one, and stores nothing (and sets no cookie) for an empty session.

A session is read together with its user, in one statement (tables/sessions.py): the user
only while active, so a deactivated account's sessions stop working at once. It is written only
when there is something to write: a request that leaves the session as it found it stores
nothing and sends no cookie, unless the session's expiry is due for renewal (an eighth of its
lifetime after it was last stored). So a signed-in page costs one statement for session and
user together; an idle session ends between 7/8 and all of `max_age` after its last request.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Empty, Message, Scope, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

from backend.db import fetch, writing
from backend.tables import BrowserSession, User

_KNOWN_ID = "_portal_known_session_id"
_LOADED = "_portal_loaded_session"
_USER = "_portal_session_user"
# When the session was last stored (seconds since the epoch), kept in the stored data only.
_STORED_AT = "_stored_at"
RENEW_FRACTION = 8
_RENEWED = (BrowserSession.user_id, BrowserSession.data, BrowserSession.expires_at)
# What generate_session_id gives (session_id_bytes = 32, as hex).
_SESSION_ID = re.compile(r"[0-9a-f]{64}")

# The user's columns (`u.*`) come as they are, so the session's own are renamed.
_SESSION_WITH_USER = (
    "SELECT s.data AS session_data, u.*"
    " FROM browser_session AS s LEFT JOIN portal_user AS u ON u.id = s.user_id AND u.active"
    # A deactivated company's users are signed out (issue 12); staff have no company.
    " AND NOT EXISTS (SELECT 1 FROM company AS c WHERE c.id = u.company AND NOT c.active)"
    " WHERE s.id = {} AND s.expires_at > {}"
)


def signed_in_user(scope: Scope) -> User | None:
    """The active user whose session this request carries, read with the session."""
    return scope.get(_USER)  # type: ignore[return-value]


class RotatingSessionBackend(ServerSideSessionBackend):
    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if not session_id or not _SESSION_ID.fullmatch(session_id):
            return {}  # no id this backend issues: nothing to ask the database
        rows = await fetch(User, _SESSION_WITH_USER, session_id, int(time.time()))
        if not rows:
            return {}
        row = dict(rows[0])
        data = row.pop("session_data").encode()
        scope = connection.scope
        scope[_KNOWN_ID] = session_id  # type: ignore[literal-required]
        if row["id"] is not None:
            scope[_USER] = User(**row, _exists_in_db=True)  # type: ignore[literal-required]
        session = self.deserialize_data(data)
        stored_at = session.pop(_STORED_AT, None)
        scope[_LOADED] = (data, stored_at)  # type: ignore[literal-required]
        return session

    async def _save(self, session_id: str, data: bytes, *, new: bool) -> bool:
        """Store a new session, or the change or renewal of one stored already. A stored one
        that ended meanwhile (signed out in another tab) stays ended: False."""
        user_id = self.deserialize_data(data).get("user_id")
        now = int(time.time())
        stored = BrowserSession(
            id=session_id,
            user_id=user_id if isinstance(user_id, int) else None,
            data=data.decode(),
            expires_at=now + int(self.config.max_age or 0),
        )
        async with writing(BrowserSession._meta.db):
            if not new:
                changes = {column: getattr(stored, column._meta.name) for column in _RENEWED}
                updated = await (
                    BrowserSession.update(changes)
                    .where(BrowserSession.id == session_id)
                    .returning(BrowserSession.id)
                )
                return bool(updated)
            # Sessions nobody came back to are forgotten when someone signs in.
            await BrowserSession.delete().where(BrowserSession.expires_at <= now)
            await BrowserSession.insert(stored)
            return True

    async def _end(self, session_id: str) -> None:
        async with writing(BrowserSession._meta.db):
            await BrowserSession.delete().where(BrowserSession.id == session_id)

    def _unchanged_and_fresh(self, session: dict[str, Any], scope: Any) -> bool:
        """The session is what the database holds, and its expiry is not due for renewal yet."""
        loaded, stored_at = scope.get(_LOADED, (None, None))
        if loaded is None or not isinstance(stored_at, int | float):
            return False
        if time.time() - stored_at >= (self.config.max_age or 0) / RENEW_FRACTION:
            return False
        return self.serialize_data({**session, _STORED_AT: stored_at}, scope) == loaded

    def get_session_id(self, connection: ASGIConnection) -> str:
        # Never the cookie's value as such: only an id the database knew when the request came
        # in (kept in the connection state), unless the handler cleared it.
        known = connection.get_session_id() or connection.scope.get(_KNOWN_ID)
        return known or self.generate_session_id()

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection
    ) -> None:
        scope = connection.scope
        known_id: str | None = scope.get(_KNOWN_ID)  # type: ignore[assignment]
        session_id = connection.get_session_id()
        if (
            known_id
            and session_id == known_id
            and scope_session
            and self._unchanged_and_fresh(scope_session, scope)  # type: ignore[arg-type]
        ):
            return
        headers = MutableScopeHeaders.from_message(message)
        cookie_params = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )

        if known_id and known_id != session_id:
            # Rotated or cleared: the old id must stop working at once.
            await self._end(known_id)

        if scope_session is Empty or not scope_session:
            if connection.cookies.get(self.config.key):
                headers.add(
                    "Set-Cookie",
                    Cookie(value="", key=self.config.key, expires=0, **cookie_params).to_header(
                        header=""
                    ),
                )
            return

        if not session_id:
            session_id = self.generate_session_id()
        data = {**scope_session, _STORED_AT: int(time.time())}
        if not await self._save(
            session_id, self.serialize_data(data, scope), new=session_id != known_id
        ):
            return
        headers.add(
            "Set-Cookie",
            Cookie(value=session_id, key=self.config.key, **cookie_params).to_header(header=""),
        )


@dataclass
class RotatingSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend


def sign_in(request: Request, user: User) -> None:
    request.clear_session()
    request.set_session({"user_id": user.id})


def sign_out(request: Request) -> None:
    request.clear_session()
