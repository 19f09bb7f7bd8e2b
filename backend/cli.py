"""The `portal` command: `portal migrate`, `portal serve`, `portal create-staff …`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import click

from backend.i18n import gettext
from backend.services.errors import ValidationFailed


async def migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards("backend")
    if not result.success:
        raise click.ClickException(f"migrations failed: {result.message}")


@click.group()
def main() -> None:
    """Support Portal administration."""
    from backend.config import ConfigError, load_settings

    # The same check as the server's start: a production machine missing its keys is told
    # so by its first command, not at the first payment.
    from backend.services import outbox

    try:
        outbox.configure(load_settings())
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@main.command("migrate")
def migrate_command() -> None:
    """Apply the committed database migrations (safe to run again)."""
    asyncio.run(migrate())


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, envvar="PORT", show_default=True)
@click.option(
    "--app", "app_factory", default="backend.app:create_app", hidden=True, help="Tests only."
)
def serve_command(host: str, port: int, app_factory: str) -> None:
    """Serve the portal with uvicorn.

    X-Forwarded-For and X-Forwarded-Proto are believed only from the proxies named in
    FORWARDED_ALLOW_IPS (comma-separated addresses or networks). Unset, the client's address
    is the socket's peer: uvicorn's own default believes anything from 127.0.0.1, so anyone
    on the machine (or a proxy that passes the header on) could pick the address the
    sign-in and registration limits count."""
    import uvicorn

    proxies = os.environ.get("FORWARDED_ALLOW_IPS", "").strip()
    # As the uvicorn command does (--app-dir .): factories are found from the working directory.
    sys.path.insert(0, os.getcwd())
    uvicorn.run(
        app_factory,
        factory=True,
        host=host,
        port=port,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


@main.command("expire-lots")
def expire_lots_command() -> None:
    """Write off the unused minutes of every lot past its expiry (safe to run any time)."""
    from backend.services import clock, ledger

    minutes = asyncio.run(ledger.expire_lots(clock.today()))
    click.echo(f"Wrote off {minutes} expired minutes")


@main.command("send-mail")
def send_mail_command() -> None:
    """Send the mail that is due in the outbox (what every instance does every few seconds)."""
    from backend.config import load_settings
    from backend.services import outbox

    sent = asyncio.run(outbox.send_due(load_settings()))
    click.echo(f"Sent {sent} mails")


@main.command("send-warnings")
def send_warnings_command() -> None:
    """Queue the warning mails due today (what every instance does daily at 07:00)."""
    from backend.services import warnings

    queued = asyncio.run(warnings.send_warnings())
    click.echo(f"Queued {queued} warning mails")


@main.command("receive-mail")
def receive_mail_command() -> None:
    """Receive the support address's mail over SMTP on INBOUND_SMTP_HOST:INBOUND_SMTP_PORT
    (what the app does when INBOUND_SMTP_PORT is set), until stopped."""
    from backend.config import load_settings
    from backend.services import inbound_mail

    settings = load_settings()
    if settings.inbound_smtp_port is None:
        raise click.ClickException("INBOUND_SMTP_PORT is not set")

    async def serve() -> None:
        server = await inbound_mail.start_receiver(
            settings.inbound_smtp_host, settings.inbound_smtp_port
        )
        click.echo(f"Receiving mail on {settings.inbound_smtp_host}:{settings.inbound_smtp_port}")
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop taking mail
        asyncio.run(serve())


@main.command("create-staff")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["technician", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_staff_command(email: str, name: str, role: str, password_stdin: bool) -> None:
    """Create a technician or admin account."""
    from backend.services.users import create_staff

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = asyncio.run(create_staff(email=email, name=name, role=role, password=password))
    except ValidationFailed as failed:
        for field, message in failed.errors.items():
            click.echo(f"{field}: {gettext(message)}", err=True)
        raise SystemExit(1) from None
    click.echo(f"Created {user.role} {user.email}")


if __name__ == "__main__":
    main()
