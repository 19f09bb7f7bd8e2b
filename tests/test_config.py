"""Settings fail closed: production never starts without its keys and never serves the
payments sandbox; development's sandbox has a key of its own, derived from SECRET_KEY."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.config import ConfigError, load_settings
from tests.support import PRODUCTION_ENV

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ["SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "PORTAL_BASE_URL"]


@pytest.mark.parametrize(
    "missing",
    [REQUIRED, REQUIRED[1:], ["STRIPE_SECRET_KEY"], ["STRIPE_WEBHOOK_SECRET"], ["PORTAL_BASE_URL"]],
)
def test_production_without_its_keys_refuses_and_names_all_that_is_missing(missing, tmp_path):
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k not in missing}
    environ["PORTAL_VAR_DIR"] = str(tmp_path)
    with pytest.raises(ConfigError) as refused:
        load_settings(environ)
    message = str(refused.value)
    assert "\n" not in message and "PORTAL_ENV=production" in message
    assert [name for name in re.findall(r"\w+", message) if name in REQUIRED] == missing
    assert not (tmp_path / "secret_key").exists()  # no development key made up instead


def test_blank_values_count_as_missing():
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        load_settings({**PRODUCTION_ENV, "STRIPE_WEBHOOK_SECRET": "  "})


def test_production_with_its_keys_talks_to_stripe_itself():
    settings = load_settings(PRODUCTION_ENV)
    assert settings.production and not settings.payments_sandbox
    assert settings.stripe_secret_key == PRODUCTION_ENV["STRIPE_SECRET_KEY"]
    assert settings.stripe_webhook_secret == PRODUCTION_ENV["STRIPE_WEBHOOK_SECRET"]
    assert settings.stripe_api_base is None  # the SDK's own default: api.stripe.com
    assert settings.base_url == "https://portal.example"


@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"PORTAL_BASE_URL": "http://portal.example"}, "https://"),
        ({"PORTAL_BASE_URL": "portal.example"}, "absolute"),
        ({"STRIPE_SECRET_KEY": "pk_live_publishable"}, "secret key"),
    ],
)
def test_production_values_that_cannot_work_are_refused(changes, complaint):
    with pytest.raises(ConfigError, match=complaint):
        load_settings({**PRODUCTION_ENV, **changes})


def test_development_sandbox_key_is_derived_from_the_secret_key(tmp_path):
    def settings(secret: str):
        return load_settings({"SECRET_KEY": secret, "PORTAL_VAR_DIR": str(tmp_path)})

    first, again, other = settings("a" * 40), settings("a" * 40), settings("b" * 40)
    assert first.payments_sandbox
    key = first.stripe_secret_key
    assert key.startswith("sk_test_") and len(key) >= 40
    assert key == again.stripe_secret_key  # stable across restarts
    assert key != other.stripe_secret_key  # not guessable from the code
    assert key not in {"sk_test_sandbox", first.stripe_webhook_secret}
    assert "a" * 40 not in key


async def _sandbox_paths_answer(settings) -> list[int]:
    app = create_app(settings, db_pool=False, background_jobs=False)
    headers = {"Authorization": f"Bearer {settings.stripe_secret_key}"}
    async with AsyncTestClient(app=app, base_url="https://portal.example") as client:
        return [
            (await client.get("/sandbox/stripe/v1/events", headers=headers)).status_code,
            (await client.get("/sandbox/stripe/checkout/cs_test_x")).status_code,
            (
                await client.post(
                    "/sandbox/stripe/v1/refunds", data={"payment_intent": "pi_x"}, headers=headers
                )
            ).status_code,
        ]


async def test_production_never_serves_the_sandbox(tmp_path):
    settings = load_settings({**PRODUCTION_ENV, "PORTAL_VAR_DIR": str(tmp_path)})
    assert await _sandbox_paths_answer(settings) == [404, 404, 404]
    # Not even when handed settings that ask for it.
    forced = dataclasses.replace(settings, payments_sandbox=True)
    assert await _sandbox_paths_answer(forced) == [404, 404, 404]


async def test_development_serves_the_sandbox_to_its_key_only(settings):
    assert (await _sandbox_paths_answer(settings))[:2] == [200, 404]  # 404: no such session
    app = create_app(settings, db_pool=False, background_jobs=False)
    async with AsyncTestClient(app=app) as client:
        wrong = await client.get(
            "/sandbox/stripe/v1/events", headers={"Authorization": "Bearer sk_test_guess"}
        )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"


def _start(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "PORTAL_BASE_URL"}
    }
    environ.update(PORTAL_ENV="production", PORTAL_VAR_DIR=str(tmp_path))
    return subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "command",
    [
        ["uvicorn", "backend.app:create_app", "--factory", "--port", "0"],
        ["portal", "migrate"],
    ],
    ids=["uvicorn", "portal-cli"],
)
def test_a_real_start_without_keys_exits_with_one_line(command, tmp_path):
    binary = str(Path(sys.executable).with_name(command[0]))
    started = _start([binary, *command[1:]], tmp_path)
    assert started.returncode != 0
    output = (started.stdout + started.stderr).strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    # SECRET_KEY is set (the test environment's): only the other three are named.
    assert [name for name in re.findall(r"\w+", output) if name in REQUIRED] == REQUIRED[1:]
