"""The `portal` command: `portal migrate`, `portal create-staff …`."""

from __future__ import annotations

import asyncio
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
    try:
        load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@main.command("migrate")
def migrate_command() -> None:
    """Apply the committed database migrations (safe to run again)."""
    asyncio.run(migrate())


@main.command("expire-lots")
def expire_lots_command() -> None:
    """Write off the unused minutes of every lot past its expiry (safe to run any time)."""
    from backend.services import clock, ledger

    minutes = asyncio.run(ledger.expire_lots(clock.today()))
    click.echo(f"Wrote off {minutes} expired minutes")


@main.command("create-staff")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["technician", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_staff_command(email: str, name: str, role: str, password_stdin: bool) -> None:
    """Create a technician or admin account."""
    from backend.services.accounts import create_staff

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
