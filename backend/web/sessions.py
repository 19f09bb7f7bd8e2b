"""Server-side sessions that cannot be fixed by an attacker.

Litestar's stock backend keeps whatever session id the incoming cookie carries, so an id
planted before sign-in would survive it. This backend only accepts ids its store knows,
issues a fresh id when the handler cleared the session (sign-in, sign-out), deletes the old
one, and stores nothing (and sets no cookie) for an empty session.

It also writes only when there is something to write: a request that leaves the session as it
found it stores nothing and sends no cookie, unless the session's expiry is due for renewal
(an eighth of its lifetime after it was last stored). So a signed-in page costs one store read,
not a read and a write; an idle session ends between 7/8 and all of `max_age` after its last
request.
"""

from __future__ import annotations

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
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

from backend.tables import User

_KNOWN_ID = "_portal_known_session_id"
_LOADED = "_portal_loaded_session"
# When the session was last stored (seconds since the epoch), kept in the stored data only.
_STORED_AT = "_stored_at"
RENEW_FRACTION = 8


class RotatingSessionBackend(ServerSideSessionBackend):
    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if session_id:
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                connection.scope[_KNOWN_ID] = session_id  # type: ignore[literal-required]
                session = self.deserialize_data(data)
                stored_at = session.pop(_STORED_AT, None)
                connection.scope[_LOADED] = (data, stored_at)  # type: ignore[literal-required]
                return session
        return {}

    def _unchanged_and_fresh(self, session: dict[str, Any], scope: Any) -> bool:
        """The session is what the store holds, and its expiry is not due for renewal yet."""
        loaded, stored_at = scope.get(_LOADED, (None, None))
        if loaded is None or not isinstance(stored_at, int | float):
            return False
        if time.time() - stored_at >= (self.config.max_age or 0) / RENEW_FRACTION:
            return False
        return self.serialize_data({**session, _STORED_AT: stored_at}, scope) == loaded

    def get_session_id(self, connection: ASGIConnection) -> str:
        # Never the cookie's value as such: only an id the store knew when the request came in
        # (kept in the connection state), unless the handler cleared it.
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
        store = self.config.get_store_from_app(scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        cookie_params = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )

        if known_id and known_id != session_id:
            # Rotated or cleared: the old id must stop working at once.
            await self.delete(known_id, store=store)

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
        await self.set(session_id, self.serialize_data(data, scope), store=store)
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
