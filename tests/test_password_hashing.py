"""argon2's parameters: the real ones wherever the portal runs for real, the cheapest ones only
for the test suite (PORTAL_CHEAP_HASHING), which would otherwise spend its time hashing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from argon2 import PasswordHasher, extract_parameters

from backend.services import users
from tests.support import PASSWORD, PRODUCTION_ENV

REAL = extract_parameters(PasswordHasher().hash("x"))
ROOT = Path(__file__).resolve().parent.parent


def test_production_hashes_with_the_real_parameters_even_when_asked_for_cheap_ones():
    for env in ("production", " production "):
        environ = {**PRODUCTION_ENV, "PORTAL_ENV": env, "PORTAL_CHEAP_HASHING": "1"}
        hasher = users.password_hasher(environ)
        assert extract_parameters(hasher.hash(PASSWORD)) == REAL


def test_a_production_process_started_with_the_test_setting_hashes_for_real():
    """The module's own hasher, as a production process imports it (a fresh interpreter)."""
    environ = {**os.environ, **PRODUCTION_ENV, "PORTAL_CHEAP_HASHING": "1"}
    script = "from backend.services.users import hash_password; print(hash_password('x'))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert extract_parameters(result.stdout.strip()) == REAL


def test_development_hashes_for_real_unless_the_test_setting_is_on():
    assert extract_parameters(users.password_hasher({}).hash("x")) == REAL
    cheap = users.password_hasher({"PORTAL_ENV": "development", "PORTAL_CHEAP_HASHING": "1"})
    assert extract_parameters(cheap.hash("x")).memory_cost < REAL.memory_cost


def test_the_suite_hashes_cheaply_and_a_real_hash_still_signs_in():
    """Passwords hashed in production keep working (and are upgraded) under either hasher."""
    assert extract_parameters(users.hash_password(PASSWORD)).memory_cost < REAL.memory_cost
    real_hash = PasswordHasher().hash(PASSWORD)
    assert users._check(real_hash, PASSWORD)
    assert not users._check(real_hash, "feil-passord-99")
