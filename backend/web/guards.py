"""Route guards built from the permission policy (backend/services/policy.py)."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from backend.services import policy


def allowed(action: str) -> Guard:
    """A guard letting through whoever `policy.can(user, action)`: a visitor is asked to sign
    in (401, a redirect for pages), a signed-in user without the right is refused (403)."""
    policy.ACTIONS[action]  # a typo fails at start-up, not at the first request

    # Async although it awaits nothing: Litestar runs a sync guard in a worker thread, a thread
    # hop (and a wait for the GIL) on every guarded request.
    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if policy.can(user, action):
            return
        if user is None:
            raise NotAuthorizedException()
        raise PermissionDeniedException()

    guard.__name__ = f"allowed_{action}"
    return guard
