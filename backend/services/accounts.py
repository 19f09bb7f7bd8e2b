"""People who sign in: passwords, sign-in, sign-in throttling and staff accounts (SPEC §1)."""

from __future__ import annotations

import datetime
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.i18n import N_
from backend.services import validation
from backend.services.errors import ValidationFailed
from backend.tables import Role, User

# argon2id with the library's recommended parameters (RFC 9106, low-memory profile).
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user, no such password")

STAFF_ROLES = frozenset({Role.technician.value, Role.admin.value})
COMPANY_ROLES = frozenset({Role.superuser.value, Role.member.value})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def authenticate(email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None (never says which was wrong)."""
    user = await User.objects().get(User.email == email.strip().lower())
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password):
        return None
    values: dict = {User.last_login_at: datetime.datetime.now(datetime.UTC)}
    if _hasher.check_needs_rehash(user.password_hash):
        values[User.password_hash] = hash_password(password)
    await User.update(values).where(User.id == user.id)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def get_active_user(user_id: int) -> User | None:
    return await User.objects().get((User.id == user_id) & (User.active.eq(True)))


async def create_staff(*, email: str, name: str, role: str, password: str) -> User:
    if role not in STAFF_ROLES:
        raise ValidationFailed({"role": N_("Rollen må være technician eller admin.")})
    cleaned = validation.clean(
        {"email": email, "name": name, "password": password},
        {
            "email": validation.email,
            "name": lambda v: validation.text(v, max_length=200),
            "password": validation.password,
        },
    )
    if await User.exists().where(User.email == cleaned["email"]):
        raise ValidationFailed(
            {"email": N_("Det finnes allerede en bruker med denne e-postadressen.")}
        )
    user = User(
        email=cleaned["email"],
        name=cleaned["name"],
        role=role,
        password_hash=hash_password(cleaned["password"]),
    )
    await user.save()
    return user


class CounterStore(Protocol):
    """The part of a key-value store (memory, file or Redis) the throttle needs."""

    async def get(self, key: str, renew_for: int | None = None) -> bytes | None: ...
    async def set(self, key: str, value: str | bytes, expires_in: int | None = None) -> None: ...
    async def expires_in(self, key: str) -> int | None: ...
    async def delete(self, key: str) -> None: ...


class LoginThrottle:
    """At most `limit` failed sign-ins per e-mail and per IP address within `window` seconds.

    Counts only failures, which a request-rate limiter cannot do. The read-then-write is not
    atomic across instances: a few extra attempts may slip through under a race, which is
    acceptable for throttling.
    """

    def __init__(self, store: CounterStore, *, limit: int = 5, window: int = 300) -> None:
        self.store = store
        self.limit = limit
        self.window = window

    @staticmethod
    def _keys(email: str, ip: str) -> list[str]:
        return [f"email:{email.strip().lower()}", f"ip:{ip}"]

    async def blocked(self, email: str, ip: str) -> bool:
        for key in self._keys(email, ip):
            count = await self.store.get(key)
            if count is not None and int(count) >= self.limit:
                return True
        return False

    async def record_failure(self, email: str, ip: str) -> None:
        for key in self._keys(email, ip):
            count = int(await self.store.get(key) or 0) + 1
            # The window runs from the first failure; later failures do not extend it.
            remaining = await self.store.expires_in(key) if count > 1 else None
            await self.store.set(key, str(count), expires_in=remaining or self.window)

    async def reset(self, email: str) -> None:
        """A successful sign-in clears the e-mail's count (not the IP's)."""
        await self.store.delete(self._keys(email, "")[0])
