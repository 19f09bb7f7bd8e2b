"""People who sign in: passwords, sign-in, sign-in throttling, staff accounts, and what each
user keeps for themselves: their password and their language (SPEC §1)."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import functools
import hashlib
import ipaddress
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.config import cheap_password_hashing
from backend.db import write_transaction, writing
from backend.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_
from backend.services import account_links, audit, outbox, validation
from backend.services.errors import DomainError, ValidationFailed
from backend.tables import AuditKind, BrowserSession, Company, Role, SignInCounter, User


def password_hasher(environ: Mapping[str, str]) -> PasswordHasher:
    """argon2id with the library's recommended parameters (RFC 9106, low-memory profile); the
    test suite's cheapest ones only where config.cheap_password_hashing allows. A hash made
    with other parameters is still verified, and upgraded at the next sign-in."""
    if cheap_password_hashing(environ):
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


_hasher = password_hasher(os.environ)
# Verified against when the e-mail is unknown, so a miss takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user, no such password")


def _yield_the_cpu() -> None:
    # Linux gives each thread its own nice value, and argon2's lane threads inherit it: while
    # passwords are hashed, the event loop (health checks, pages) still gets the CPU first.
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


# A hash or verify takes a quarter of a second of CPU and 64 MiB: it runs in these threads
# (argon2 releases the GIL), never on the event loop, and at most this many at once.
_hashing = ThreadPoolExecutor(
    max_workers=min(4, os.cpu_count() or 1),
    thread_name_prefix="argon2",
    initializer=_yield_the_cpu,
)

T = TypeVar("T")

STAFF_ROLES = frozenset({Role.technician.value, Role.admin.value})
COMPANY_ROLES = frozenset({Role.superuser.value, Role.member.value})


def hash_password(password: str) -> str:
    """Blocks for the whole hash: for scripts and tests. Requests use hash_password_async."""
    return _hasher.hash(password)


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    # The caller's context goes along (as with asyncio.to_thread), so the hashing thread sees
    # e.g. whether a transaction is open.
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _hashing, functools.partial(context.run, function, *args)
    )


async def hash_password_async(password: str) -> str:
    """The hash, computed off the event loop. Call it before opening a transaction: SQLite's
    write lock would be held for the whole hash."""
    return await _off_loop(_hasher.hash, password)


async def is_active(user: User) -> bool:
    """Whether the user may act at all: their account is active and, for a company's user,
    their company is not deactivated (issue 12). Sessions and API tokens read the same rule in
    their SQL (backend/web/sessions.py, services/api_tokens.py)."""
    if not user.active:
        return False
    if user.company is None:
        return True
    return not await Company.exists().where(
        (Company.id == user.company) & (Company.active.eq(False))
    )


async def authenticate(email: str, password: str, *, ip: str = "") -> User | None:
    """The active user with this e-mail and password, or None (never says which was wrong).
    A staff member's sign-in is recorded in the audit trail (issue 12), with the sign-in.

    Callers that take a password from the network go through sign_in, which throttles."""
    user = await User.objects().get(User.email == email.strip().lower())
    if user is None or not await is_active(user):
        await _verify(_DUMMY_HASH, password)
        return None
    if not await _verify(user.password_hash, password):
        return None
    values: dict = {User.last_login_at: datetime.datetime.now(datetime.UTC)}
    if _hasher.check_needs_rehash(user.password_hash):
        values[User.password_hash] = await hash_password_async(password)
    if user.role not in STAFF_ROLES:
        await User.update(values).where(User.id == user.id)
        return user
    async with write_transaction(User._meta.db):
        await User.update(values).where(User.id == user.id)
        await audit.record(
            user, AuditKind.staff_sign_in, subject=f"user:{user.id}", after={"ip": ip}
        )
    return user


def _check(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _verify(password_hash: str, password: str) -> bool:
    return await _off_loop(_check, password_hash, password)


class StaffAccount(msgspec.Struct):
    email: validation.Email
    name: validation.line(200)
    password: validation.Password


async def create_staff(*, email: str, name: str, role: str, password: str) -> User:
    if role not in STAFF_ROLES:
        raise ValidationFailed({"role": N_("Rollen må være technician eller admin.")})
    form = validation.convert({"email": email, "name": name, "password": password}, StaffAccount)
    if await User.exists().where(User.email == form.email):
        raise ValidationFailed(
            {"email": N_("Det finnes allerede en bruker med denne e-postadressen.")}
        )
    user = User(
        email=form.email,
        name=form.name,
        role=role,
        password_hash=await hash_password_async(form.password),
    )
    await user.save()
    return user


class TooManyAttempts(DomainError):
    """Too many sign-in attempts for this e-mail or from this address: wait for the window.
    `message`: what to tell, when the attempts were not sign-ins (forgotten passwords)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "too many attempts")
        self.message = message


@dataclass(frozen=True)
class Reservation:
    """One attempt counted against an e-mail and an address, before its password is checked."""

    email_subject: str
    ip_subject: str
    ip_window_ends_ms: int


# One statement, so concurrent attempts (in any number of processes) each get their own
# number: SQLite >= 3.35 and PostgreSQL both run INSERT ... ON CONFLICT ... RETURNING
# atomically. A window that has ended starts again at 1 and runs from this attempt.
_COUNT_ATTEMPT = """
INSERT INTO sign_in_counter (subject, attempts, window_ends_ms) VALUES ({}, 1, {})
ON CONFLICT (subject) DO UPDATE SET
    attempts = CASE WHEN sign_in_counter.window_ends_ms <= {}
        THEN 1 ELSE sign_in_counter.attempts + 1 END,
    window_ends_ms = CASE WHEN sign_in_counter.window_ends_ms <= {}
        THEN excluded.window_ends_ms ELSE sign_in_counter.window_ends_ms END
RETURNING attempts, window_ends_ms
"""


class LoginThrottle:
    """At most `limit` failed sign-ins per e-mail and per client address within `window`
    seconds; the next attempt in the window is refused (issue 8).

    An attempt is counted before its password is checked and only then checked if its number
    is within the limit, so however many arrive at once, at most `limit` passwords are tried.
    A successful sign-in clears the e-mail's count and hands its place back to the address
    (an office signing in from one address is not throttled by its own successes).
    """

    def __init__(
        self,
        *,
        limit: int = 5,
        window: int = 300,
        ip_limit: int | None = None,
        prefix: str = "",
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.limit = limit
        # Per client address, when it differs from the e-mail's (an office shares one).
        self.ip_limit = limit if ip_limit is None else ip_limit
        self.window_ms = window * 1000
        # Counters of another kind of request ("reset-": forgotten passwords) are their own.
        self.prefix = prefix
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))

    def email_subject(self, email: str) -> str:
        # Hashed: the login form takes any text as e-mail, and the table need not hold addresses.
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return f"{self.prefix}email:{digest}"

    def ip_subject(self, ip: str) -> str:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return f"{self.prefix}ip:{ip[:80]}"
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return f"{self.prefix}ip:{address.ipv4_mapped}"
            # One IPv6 subscriber gets a whole /64: counting single addresses would give an
            # attacker 2^64 fresh counters.
            return f"{self.prefix}ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
        return f"{self.prefix}ip:{address}"

    async def _count(self, subject: str) -> tuple[int, int]:
        now = self._now_ms()
        async with writing(SignInCounter._meta.db):
            rows = await SignInCounter.raw(_COUNT_ATTEMPT, subject, now + self.window_ms, now, now)
        return int(rows[0]["attempts"]), int(rows[0]["window_ends_ms"])

    async def reserve(self, email: str, ip: str) -> Reservation:
        """Count one attempt; raise TooManyAttempts if it is over the limit for either.

        The address is counted first: a refused address then adds nothing to the e-mail's
        count (nor a row per e-mail an attacker makes up)."""
        ip_subject = self.ip_subject(ip)
        ip_attempts, ip_window_ends = await self._count(ip_subject)
        if ip_attempts > self.ip_limit:
            raise TooManyAttempts()
        email_subject = self.email_subject(email)
        email_attempts, _ = await self._count(email_subject)
        if email_attempts > self.limit:
            # No password is checked: the address's place is given back.
            await self._release(ip_subject, ip_window_ends)
            raise TooManyAttempts()
        return Reservation(email_subject, ip_subject, ip_window_ends)

    async def succeeded(self, reservation: Reservation) -> None:
        """The password was right: forget the e-mail's failures (and any counters whose
        window has ended), and give the address its place back."""
        await self._release(reservation.ip_subject, reservation.ip_window_ends_ms)
        async with writing(SignInCounter._meta.db):
            await SignInCounter.delete().where(
                (SignInCounter.subject == reservation.email_subject)
                | (SignInCounter.window_ends_ms <= self._now_ms())
            )

    async def _release(self, subject: str, window_ends_ms: int) -> None:
        # Only in the window the attempt was counted in: a new window owes it nothing.
        async with writing(SignInCounter._meta.db):
            await SignInCounter.update({SignInCounter.attempts: SignInCounter.attempts - 1}).where(
                (SignInCounter.subject == subject)
                & (SignInCounter.window_ends_ms == window_ends_ms)
                & (SignInCounter.attempts > 0)
            )


async def sign_in(
    email: str, password: str, *, ip: str, throttle: LoginThrottle | None = None
) -> User | None:
    """The user, if the e-mail and password are right and neither the e-mail nor the address
    has used up its attempts (raises TooManyAttempts); else None."""
    throttle = throttle or LoginThrottle()
    reservation = await throttle.reserve(email, ip)
    user = await authenticate(email, password, ip=ip)
    if user is not None:
        await throttle.succeeded(reservation)
    return user


# --- what each user keeps for themselves -----------------------------------------------------


class PasswordChange(msgspec.Struct):
    # Only its length: a wrong current password is told as one, whatever was typed.
    current_password: validation.field(
        str, max_length=1024, min_length=1, required=N_("Skriv inn passordet du har nå.")
    )
    # The rule registration has (validation.Password), and the same repetition.
    new_password: validation.Password
    new_password_confirm: validation.PasswordConfirmation

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> dict[str, str]:
        return validation.passwords_match(values, "new_password", "new_password_confirm")


WRONG_CURRENT_PASSWORD = N_("Passordet er feil. Passordet ditt er ikke endret.")


async def check_current_password(
    user: User,
    password: str,
    *,
    ip: str,
    wrong: str,
    field: str = "current_password",
    throttle: LoginThrottle | None = None,
) -> None:
    """The signed-in user's current password, typed again to confirm a change to their
    account: ValidationFailed with `wrong` on `field` unless it is right.

    It is a password taken from the network: checked under the sign-in throttle, against the
    same counts for the e-mail and the address (TooManyAttempts), so a stolen session cannot
    be used to guess it."""
    throttle = throttle or LoginThrottle()
    reservation = await throttle.reserve(user.email, ip)
    # The hash as this request read it, with the session.
    if not await _verify(user.password_hash, password):
        raise ValidationFailed({field: wrong})
    await throttle.succeeded(reservation)


async def change_password(
    user: User, form: PasswordChange, *, ip: str, throttle: LoginThrottle | None = None
) -> None:
    """The signed-in user's new password, if the current one they typed is right (checked as
    check_current_password does): every session of theirs ends with it (a browser someone
    else may hold is signed out), so the caller signs the current browser in again with a
    fresh session id."""
    await check_current_password(
        user, form.current_password, ip=ip, wrong=WRONG_CURRENT_PASSWORD, throttle=throttle
    )
    # Before the transaction: SQLite's write lock would be held for the whole hash.
    password_hash = await hash_password_async(form.new_password)
    async with write_transaction(User._meta.db):
        await replace_password(user, password_hash)


async def replace_password(user: User, password_hash: str) -> None:
    """Inside the caller's write transaction: the user's new password (its hash). Every session
    of theirs ends, no link mailed to them (a reset, an e-mail change) works any longer, and
    they are told by mail, in case it was not them."""
    await User.update({User.password_hash: password_hash}).where(User.id == user.id)
    await BrowserSession.delete().where(BrowserSession.user_id == user.id)
    await account_links.end_links_of(user.id)
    # Each change is a cause of its own.
    await outbox.queue(
        user.email,
        "password_changed",
        {"user": user},
        f"password-changed:{user.id}:{secrets.token_hex(8)}",
        language=language_of(user),
    )


def language_of(user: User) -> str:
    """The language of the user's pages and mails: the one they chose, Norwegian until then."""
    language = getattr(user, "language", None)
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


async def set_language(user: User, language: str) -> None:
    """Keep the user's choice of language (a language the portal has; anything else is no
    choice), for their pages on every browser and for their mails."""
    if language not in LANGUAGES or language == user.language:
        return
    async with writing(User._meta.db):
        await User.update({User.language: language}).where(User.id == user.id)
    user.language = language
