"""Settings, read only from the environment (documented in .env.example)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from stdnum.no import orgnr

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = ROOT / "var"
DEFAULT_DATABASE_URL = "sqlite:///var/portal.sqlite"
# What production cannot guess: without these the portal would sign with a throwaway key or
# take payments on the sandbox's test page.
PRODUCTION_REQUIRED = (
    "SECRET_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "PORTAL_BASE_URL",
    # The seller a receipt names (a Norwegian receipt must: name, org.nr. with MVA, address).
    "SELLER_NAME",
    "SELLER_ORG_NUMBER",
    "SELLER_ADDRESS",
    # Where mail goes out (services/outbox.py): production never writes mail to files instead.
    "SMTP_URL",
    "MAIL_FROM",
)
# Development's seller (the reseller of the seed offer); its org.nr. is left out of receipts.
DEVELOPMENT_SELLER_NAME = "Brødrene Johnsen SALEIMPEX AS"
DEVELOPMENT_MAIL_FROM = "support@localhost"
SMTP_SCHEMES = {"smtp": 25, "smtps": 465}
# Enhetsregisteret's open API (no key): production's default. Development (`make run`, the
# tests) looks nothing up unless BRREG_API_URL names a register, so it never calls the internet.
PUBLIC_BRREG_API_URL = "https://data.brreg.no/enhetsregisteret/api"


@dataclass(frozen=True)
class Seller:
    name: str
    org_number: str  # nine digits, or "" in development
    address: str


class ConfigError(RuntimeError):
    """The environment is wrong; the message is one line an operator can act on."""


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
    # No STRIPE_SECRET_KEY (development only): the portal serves its own payments sandbox
    # under /sandbox/stripe, which accepts only `stripe_secret_key`.
    payments_sandbox: bool
    # PORTAL_BENCH=1 (`make bench` only): serve the benchmark's floor endpoint.
    bench: bool = False
    # DB_POOL_SIZE: PostgreSQL connections per process, at least the requests it serves at once.
    db_pool_size: int = 32
    seller: Seller = Seller(DEVELOPMENT_SELLER_NAME, "", "")
    # SMTP_URL (smtp://user:pass@host:587 or smtps://…); None: mails are written as .eml files
    # under `mail_dir` and shown at /dev/mail (development only).
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str = DEVELOPMENT_MAIL_FROM
    mail_dir: Path = VAR_DIR / "mail"
    # Where the registration form looks organisation numbers up; None: no lookups.
    brreg_api_url: str | None = None
    # The support address's mail comes in here over SMTP (services/inbound_mail.py), from the
    # reseller's own mail server; None: no receiver.
    inbound_smtp_port: int | None = None
    inbound_smtp_host: str = "127.0.0.1"
    # INBOUND_AUTHSERV_ID: the reseller's mail server's name in its Authentication-Results
    # headers; set, a mail counts as a customer's only if that server says DMARC passed.
    inbound_authserv_id: str | None = None
    # ATTACHMENT_DIR: where files on tickets are kept (services/attachments.py), outside the
    # database; default PORTAL_VAR_DIR/attachments.
    attachment_dir: Path = VAR_DIR / "attachments"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def cheap_password_hashing(environ: Mapping[str, str]) -> bool:
    """PORTAL_CHEAP_HASHING=1 (the test suite): argon2 with its cheapest parameters, so a test
    run does not spend its time hashing. Never in production, whatever is set."""
    production = environ.get("PORTAL_ENV", "").strip() == "production"
    return _flag(environ.get("PORTAL_CHEAP_HASHING")) and not production


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


def _derived(secret_key: str, purpose: bytes) -> str:
    """A development secret that follows SECRET_KEY, so nothing else needs configuring."""
    return hmac.new(secret_key.encode(), purpose, hashlib.sha256).hexdigest()


def _check_base_url(base_url: str, *, production: bool) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"PORTAL_BASE_URL must be an absolute http(s) address, not {base_url!r}")
    if production and parts.scheme != "https":
        # Production cookies are Secure and __Host-: over plain http nobody could sign in.
        raise ConfigError(f"PORTAL_BASE_URL must be an https:// address in production: {base_url}")


def _check_smtp_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise ConfigError("SMTP_URL must look like smtp://user:password@host:587 or smtps://host")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ConfigError("SMTP_URL has a port that is not a number") from None


def _check_mail_from(mail_from: str) -> None:
    _, address = parseaddr(mail_from)
    if "@" not in address or any(c in mail_from for c in "\r\n"):
        raise ConfigError(
            f"MAIL_FROM must be an address, e.g. Support <support@example.no>: {mail_from!r}"
        )


def _brreg_api_url(value: str, *, production: bool) -> str | None:
    """BRREG_API_URL: unset or empty is the public register in production and no lookups in
    development; "off" is no lookups anywhere."""
    value = value.strip().rstrip("/")
    if value.lower() == "off" or (not value and not production):
        return None
    url = value or PUBLIC_BRREG_API_URL
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"BRREG_API_URL must be an absolute http(s) address or off, not {url!r}")
    return url


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """The settings, or ConfigError with one line saying what is wrong.

    Production fails closed: without its own secret key, Stripe keys and public address it
    refuses to start rather than fall back to the payments sandbox, whose hosted page takes
    fake payments.
    """
    environ = dict(os.environ if environ is None else environ)
    env = environ.get("PORTAL_ENV", "development").strip() or "development"
    if env not in {"development", "production"}:
        raise ConfigError("PORTAL_ENV must be 'development' or 'production'")
    production = env == "production"
    if production:
        missing = [name for name in PRODUCTION_REQUIRED if not environ.get(name, "").strip()]
        if missing:
            raise ConfigError(
                f"PORTAL_ENV=production needs {', '.join(missing)} (not set; see .env.example)"
            )
    var_dir = Path(environ.get("PORTAL_VAR_DIR") or VAR_DIR)
    secret_key = environ.get("SECRET_KEY", "").strip() or _development_secret(var_dir)
    if len(secret_key) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    base_url = (
        environ.get("PORTAL_BASE_URL", "").strip().rstrip("/")
        or f"http://127.0.0.1:{environ.get('PORT', '').strip() or '8000'}"
    )
    _check_base_url(base_url, production=production)
    stripe_key = environ.get("STRIPE_SECRET_KEY", "").strip()
    webhook_secret = environ.get("STRIPE_WEBHOOK_SECRET", "").strip()
    api_base = environ.get("STRIPE_API_BASE", "").strip().rstrip("/") or None
    sandbox = not stripe_key
    if sandbox:
        # The sandbox answers only this key, so knowing where it is mounted is not enough
        # to read every company's events or refund their payments.
        stripe_key = "sk_test_" + _derived(secret_key, b"payments sandbox key")[:40]
        api_base = api_base or f"{base_url}/sandbox/stripe"
        webhook_secret = webhook_secret or "whsec_" + _derived(secret_key, b"payments sandbox")[:32]
    elif not stripe_key.startswith(("sk_", "rk_")):
        raise ConfigError("STRIPE_SECRET_KEY must be a Stripe secret key (sk_… or rk_…)")
    elif not webhook_secret:
        raise ConfigError("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY")
    pool_size = environ.get("DB_POOL_SIZE", "").strip() or "32"
    if not pool_size.isdigit() or not 1 <= int(pool_size) <= 1000:
        raise ConfigError(f"DB_POOL_SIZE must be a whole number from 1 to 1000, not {pool_size!r}")
    seller_org_number = re.sub(r"[\s.]", "", environ.get("SELLER_ORG_NUMBER", ""))
    if seller_org_number and not orgnr.is_valid(seller_org_number):
        raise ConfigError(f"SELLER_ORG_NUMBER is not an organisation number: {seller_org_number!r}")
    seller = Seller(
        name=environ.get("SELLER_NAME", "").strip() or DEVELOPMENT_SELLER_NAME,
        org_number=seller_org_number,
        address=environ.get("SELLER_ADDRESS", "").strip(),
    )
    smtp_url = environ.get("SMTP_URL", "").strip() or None
    if smtp_url:
        _check_smtp_url(smtp_url)
    mail_from = environ.get("MAIL_FROM", "").strip() or DEVELOPMENT_MAIL_FROM
    _check_mail_from(mail_from)
    inbound_port = environ.get("INBOUND_SMTP_PORT", "").strip()
    if inbound_port and not (inbound_port.isdigit() and 1 <= int(inbound_port) <= 65535):
        raise ConfigError(f"INBOUND_SMTP_PORT must be a port number, not {inbound_port!r}")
    return Settings(
        env=env,
        database_url=environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        secret_key=secret_key,
        redis_url=environ.get("REDIS_URL", "").strip() or None,
        # Demo accounts have a published password: never in production.
        demo=_flag(environ.get("PORTAL_DEMO")) and not production,
        var_dir=var_dir,
        base_url=base_url,
        stripe_secret_key=stripe_key,
        stripe_webhook_secret=webhook_secret,
        stripe_api_base=api_base,
        payments_sandbox=sandbox,
        bench=_flag(environ.get("PORTAL_BENCH")),
        db_pool_size=int(pool_size),
        seller=seller,
        smtp_url=smtp_url,
        mail_from=mail_from,
        mail_dir=Path(environ.get("MAIL_DIR", "").strip() or var_dir / "mail"),
        brreg_api_url=_brreg_api_url(environ.get("BRREG_API_URL", ""), production=production),
        inbound_smtp_port=int(inbound_port) if inbound_port else None,
        inbound_smtp_host=environ.get("INBOUND_SMTP_HOST", "").strip() or "127.0.0.1",
        inbound_authserv_id=environ.get("INBOUND_AUTHSERV_ID", "").strip().lower() or None,
        attachment_dir=Path(environ.get("ATTACHMENT_DIR", "").strip() or var_dir / "attachments"),
    )
