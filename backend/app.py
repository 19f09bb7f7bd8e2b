"""The application factory: `litestar --app backend.app:create_app run`."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from pathlib import Path

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.stores.file import FileStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from litestar.template.config import TemplateConfig
from piccolo.engine.sqlite import SQLiteEngine

from backend.config import ConfigError, Settings, load_settings
from backend.controllers.account import AccountController, EmailConfirmationController
from backend.controllers.admin import AdminController, OnboardingController
from backend.controllers.advisories import (
    PortalAdvisoriesController,
    PublicAdvisoriesController,
    StaffAdvisoriesController,
)
from backend.controllers.api import BEARER, ApiController
from backend.controllers.auth import AuthController
from backend.controllers.catalog_admin import CatalogAdminController
from backend.controllers.members import InvitationController, MembersController
from backend.controllers.orders import ChargesController, OrdersController
from backend.controllers.password import PasswordResetController
from backend.controllers.portal import PortalController
from backend.controllers.public import PublicController
from backend.controllers.registration import RegistrationController
from backend.controllers.reports import ReportsController
from backend.controllers.staff import StaffController
from backend.controllers.staff_orders import StaffOrdersController
from backend.controllers.tickets import TicketsController
from backend.controllers.webhooks import WebhooksController
from backend.db import close_pool, open_pool
from backend.services import attachments, brreg, clock, inbound_mail, ledger, outbox, warnings
from backend.services.demo import DEMO_PASSWORD, seed_demo
from backend.services.payments import Payments
from backend.tables import Company
from backend.web.errors import EXCEPTION_HANDLERS
from backend.web.language import language_middleware
from backend.web.paths import reject_impossible_ids
from backend.web.security import SessionUserMiddleware, security_headers
from backend.web.sessions import RotatingSessionConfig
from backend.web.templating import create_template_engine

STATIC_DIR = Path(__file__).resolve().parent.parent / "frontend" / "static"
SESSION_MAX_AGE = 8 * 3600
# Neither browsers' sessions nor CSRF tokens: static files, probes, Stripe and its stand-in.
NO_SESSION_PATHS = ["^/static/", "^/healthz", "^/stripe/webhook", "^/sandbox/", "^/bench/"]

logger = logging.getLogger("portal")

# At /schema: the customer API (tag "Customer API"), for clients generated from it, and the
# forms' fields with their bounds, for fuzzers.
OPENAPI_CONFIG = OpenAPIConfig(
    title="Supportportalen",
    version="1.0.0",
    description="The customer API under /api/v1: send `Authorization: Bearer <token>` (a"
    " token the company's superuser makes at /portal/company/api), or use a signed-in session.",
    components=Components(
        security_schemes={
            BEARER: SecurityScheme(
                type="http",
                scheme="bearer",
                description="An API token from /portal/company/api (spt_…)",
            )
        }
    ),
    path="/schema",
)


def create_stores(settings: Settings) -> StoreRegistry:
    """Request-rate limits: Redis when configured (shared by every instance), else files under
    var/ (one machine). Sessions (web/sessions.py) and sign-in counters (users.LoginThrottle)
    are in the database, which every process shares in every configuration."""
    if settings.redis_url:
        root = RedisStore.with_client(url=settings.redis_url, namespace="portal")
        return StoreRegistry(default_factory=root.with_namespace)

    def file_store(name: str) -> FileStore:
        path = settings.var_dir / "stores" / name
        path.mkdir(parents=True, exist_ok=True)
        return FileStore(path)

    return StoreRegistry(default_factory=file_store)


async def _prepare_database() -> None:
    engine = Company._meta.db
    if isinstance(engine, SQLiteEngine):
        # WAL lets readers work while one request writes.
        await engine.run_ddl("PRAGMA journal_mode=WAL")


EXPIRY_SWEEP_SECONDS = 3600


async def _expiry_sweep() -> None:
    """Every instance writes off expired lots at start and then every hour (what
    `portal expire-lots` does), so no page view has to: reads count only unexpired lots.
    Several instances may sweep at once: the ledger's keys make a second write-off a no-op."""
    while True:
        try:
            minutes = await ledger.expire_lots(clock.today())
            if minutes:
                logger.info("expiry sweep wrote off %s minutes", minutes)
        except Exception:
            logger.exception("expiry sweep failed")
        await asyncio.sleep(EXPIRY_SWEEP_SECONDS)


def _settings_or_exit() -> Settings:
    """For `uvicorn backend.app:create_app --factory` and `make run`: a wrong environment
    ends the process with one line saying what is wrong, not a traceback."""
    try:
        return load_settings()
    except ConfigError as error:
        print(f"portal: cannot start: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


SHUTDOWN_GRACE_SECONDS = 15


def create_app(
    settings: Settings | None = None, *, db_pool: bool = True, background_jobs: bool = True
) -> Litestar:
    settings = settings or _settings_or_exit()
    production = settings.production
    outbox.configure(settings)
    attachments.configure(settings)
    session_config = RotatingSessionConfig(
        key="__Host-session" if production else "session",
        secure=production,
        httponly=True,
        samesite="lax",
        max_age=SESSION_MAX_AGE,
        exclude=NO_SESSION_PATHS,
    )
    csrf_config = CSRFConfig(
        secret=settings.secret_key,
        cookie_name="__Host-csrftoken" if production else "csrftoken",
        cookie_secure=production,
        cookie_samesite="lax",
        exclude=NO_SESSION_PATHS,
    )

    jobs: list[asyncio.Task] = []
    servers: list[asyncio.Server] = []

    async def on_startup() -> None:
        await _prepare_database()
        if db_pool:
            await open_pool(Company._meta.db, settings.db_pool_size)
        if settings.demo:
            accounts = await seed_demo()
            print(f"Demo accounts (password: {DEMO_PASSWORD}):", flush=True)
            for email, role in accounts:
                print(f"  {email:24} {role}", flush=True)
        if background_jobs:
            jobs.append(asyncio.create_task(_expiry_sweep()))
            jobs.append(asyncio.create_task(outbox.run_sender(settings)))
            jobs.append(asyncio.create_task(warnings.run_daily()))
            if settings.inbound_smtp_port is not None:
                # Mail to the support address, from the reseller's mail server.
                servers.append(
                    await inbound_mail.start_receiver(
                        settings.inbound_smtp_host, settings.inbound_smtp_port
                    )
                )
        # What start-up loaded lives as long as the process: kept out of the collector's full
        # passes, which would otherwise walk all of it and stall the requests in flight.
        gc.collect()
        gc.freeze()

    async def on_shutdown() -> None:
        for server in servers:
            server.close()
        for job in jobs:
            job.cancel()
        # Until each has left its transaction: a connection left open mid-write would keep the
        # process from exiting (SQLite) or hold a lock (PostgreSQL). A job that does not stop
        # within the grace is left behind rather than holding the shutdown for ever.
        if jobs:
            await asyncio.wait(jobs, timeout=SHUTDOWN_GRACE_SECONDS)
        try:
            if sandbox is not None:
                await sandbox.state.sandbox.aclose()  # a mounted app gets no lifespan events
        finally:
            if db_pool:
                # SQLite's read connections hold threads the process would wait for at exit.
                await close_pool(Company._meta.db)

    route_handlers: list = [
        PublicController,
        RegistrationController,
        AuthController,
        AccountController,
        EmailConfirmationController,
        PasswordResetController,
        PortalController,
        MembersController,
        InvitationController,
        OrdersController,
        TicketsController,
        ChargesController,
        StaffController,
        StaffOrdersController,
        AdminController,
        CatalogAdminController,
        StaffAdvisoriesController,
        PortalAdvisoriesController,
        PublicAdvisoriesController,
        OnboardingController,
        ReportsController,
        WebhooksController,
        ApiController,
        create_static_files_router(path="/static", directories=[STATIC_DIR], name="static"),
    ]
    if settings.bench:
        from backend.controllers.bench import BenchController

        route_handlers.append(BenchController)
    if not production:
        # Mails written as files (no SMTP_URL) to read in the browser: never in production.
        from backend.controllers.dev_mail import DevMailController

        route_handlers.append(DevMailController)
    sandbox = None
    # Its hosted page takes fake payments: never in production, whatever the settings say.
    if settings.payments_sandbox and not settings.production:
        from backend.sandbox import create_sandbox_app, sandbox_mount

        sandbox = create_sandbox_app(
            webhook_url=f"{settings.base_url}/stripe/webhook",
            webhook_secret=settings.stripe_webhook_secret,
            public_url=f"{settings.base_url}/sandbox/stripe",
            secret_key=settings.stripe_secret_key,
            allowed_origins=[settings.base_url],
        )
        route_handlers.append(sandbox_mount(sandbox, "/sandbox/stripe"))

    return Litestar(
        route_handlers=route_handlers,
        state=State(
            {
                "settings": settings,
                "payments": Payments(
                    secret_key=settings.stripe_secret_key,
                    webhook_secret=settings.stripe_webhook_secret,
                    api_base=settings.stripe_api_base,
                ),
                "brreg": brreg.Enhetsregisteret(settings.brreg_api_url),
            }
        ),
        middleware=[
            session_config.middleware,
            # After the session: a signed-in user's pages are in the user's own language.
            language_middleware,
            DefineMiddleware(SessionUserMiddleware, exclude=NO_SESSION_PATHS),
        ],
        csrf_config=csrf_config,
        stores=create_stores(settings),
        template_config=TemplateConfig(instance=create_template_engine(auto_reload=not production)),
        before_request=reject_impossible_ids,
        before_send=[security_headers(production)],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OPENAPI_CONFIG,
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        debug=False,
    )
