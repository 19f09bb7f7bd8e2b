"""Settings, read only from the environment (documented in .env.example)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = ROOT / "var"
DEFAULT_DATABASE_URL = "sqlite:///var/portal.sqlite"


class ConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    secret_key: str = field(repr=False)
    redis_url: str | None
    demo: bool
    var_dir: Path
    base_url: str  # where browsers (and Stripe's redirects) reach the portal
    stripe_secret_key: str = field(repr=False)
    stripe_webhook_secret: str = field(repr=False)
    stripe_api_base: str | None
    # No STRIPE_SECRET_KEY: the portal serves its own payments sandbox under /sandbox/stripe.
    payments_sandbox: bool
    # PORTAL_BENCH=1 (`make bench` only): serve the benchmark's floor endpoint.
    bench: bool = False

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _development_secret(var_dir: Path) -> str:
    """Development keeps one generated key so sessions survive a restart."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    env = environ.get("PORTAL_ENV", "development").strip() or "development"
    if env not in {"development", "production"}:
        raise ConfigError("PORTAL_ENV must be 'development' or 'production'")
    var_dir = Path(environ.get("PORTAL_VAR_DIR") or VAR_DIR)
    secret_key = environ.get("SECRET_KEY", "").strip()
    if not secret_key:
        if env == "production":
            raise ConfigError("SECRET_KEY is required when PORTAL_ENV=production")
        secret_key = _development_secret(var_dir)
    if len(secret_key) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    base_url = (
        environ.get("PORTAL_BASE_URL", "").strip().rstrip("/")
        or f"http://127.0.0.1:{environ.get('PORT', '').strip() or '8000'}"
    )
    stripe_key = environ.get("STRIPE_SECRET_KEY", "").strip()
    webhook_secret = environ.get("STRIPE_WEBHOOK_SECRET", "").strip()
    api_base = environ.get("STRIPE_API_BASE", "").strip().rstrip("/") or None
    sandbox = not stripe_key
    if sandbox:
        stripe_key = "sk_test_sandbox"
        api_base = api_base or f"{base_url}/sandbox/stripe"
        webhook_secret = (
            webhook_secret
            or "whsec_"
            + hmac.new(secret_key.encode(), b"payments sandbox", hashlib.sha256).hexdigest()[:32]
        )
    elif not webhook_secret:
        raise ConfigError("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY")
    return Settings(
        env=env,
        database_url=environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        secret_key=secret_key,
        redis_url=environ.get("REDIS_URL", "").strip() or None,
        # Demo accounts have a published password: never in production.
        demo=_flag(environ.get("PORTAL_DEMO")) and env != "production",
        var_dir=var_dir,
        base_url=base_url,
        stripe_secret_key=stripe_key,
        stripe_webhook_secret=webhook_secret,
        stripe_api_base=api_base,
        payments_sandbox=sandbox,
        bench=_flag(environ.get("PORTAL_BENCH")),
    )
