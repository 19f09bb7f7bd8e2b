"""Helpers the tests share: valid data and a person's steps (register, sign in)."""

from __future__ import annotations

import random
import re
import secrets
from typing import Any

from stdnum.no import orgnr

PASSWORD = "riktig-hemmelig-1"

# Everything production requires, with real-looking values (nothing here reaches Stripe).
PRODUCTION_ENV = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "production-secret-key-" + "p" * 32,
    "STRIPE_SECRET_KEY": "sk_live_51NqRealLookingKey0123456789abcdef",
    "STRIPE_WEBHOOK_SECRET": "whsec_RealLookingEndpointSecret0123456789",
    "PORTAL_BASE_URL": "https://portal.example",
    "SELLER_NAME": "Brødrene Johnsen SALEIMPEX AS",
    "SELLER_ORG_NUMBER": "923 609 016",
    "SELLER_ADDRESS": "Industrivegen 1, 2069 Jessheim",
    # Nothing is sent there unless a test queues mail and runs a sender.
    "SMTP_URL": "smtp://portal:mail-password@127.0.0.1:1",
    "MAIL_FROM": "Support <support@portal.example>",
}


def new_org_number() -> str:
    """A random organisation number with a correct mod-11 check digit."""
    while True:
        number = str(random.randint(800_000_000, 999_999_999))
        if orgnr.is_valid(number):
            return number


def new_email(prefix: str = "sjef") -> str:
    return f"{prefix}.{secrets.token_hex(4)}@example.no"


def registration_form(**overrides: str) -> dict[str, str]:
    form = {
        "company_name": "Presisjon Maskin AS",
        "org_number": new_org_number(),
        "address": "Verkstedveien 12",
        "postal_code": "7030",
        "city": "Trondheim",
        "name": "Kari Nordmann",
        "email": new_email(),
        "phone": "+47 73 12 34 56",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    form.update(overrides)
    return form


async def csrf_token(client: Any, path: str = "/login") -> str:
    response = await client.get(path)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', response.text)
    assert match, f"no csrf meta tag on {path}"
    return match.group(1)


async def post_form(client: Any, path: str, data: dict[str, str], **kwargs: Any) -> Any:
    token = await csrf_token(client)
    kwargs.setdefault("follow_redirects", False)
    return await client.post(path, data={**data, "_csrf_token": token}, **kwargs)


async def register(client: Any, **overrides: str) -> dict[str, str]:
    form = registration_form(**overrides)
    response = await post_form(client, "/register", form)
    assert response.status_code == 303, response.text
    return form


async def login(client: Any, email: str, password: str = PASSWORD) -> Any:
    return await post_form(client, "/login", {"email": email, "password": password})


async def logout(client: Any) -> Any:
    return await post_form(client, "/logout", {})


async def make_company(name: str = "Testfirma AS") -> tuple[int, str]:
    """A company and its superuser straight in the database: (company id, superuser e-mail)."""
    from backend.services.users import hash_password
    from backend.tables import Company, Role, User

    company = Company(
        name=name, org_number=new_org_number(), address="Gata 1", postal_code="0150", city="Oslo"
    )
    await company.save()
    email = new_email()
    await User(
        email=email,
        name="Sara Superbruker",
        phone="+4722334455",
        role=Role.superuser.value,
        company=company.id,
        password_hash=hash_password(PASSWORD),
    ).save()
    return company.id, email


async def make_ticket(
    company_id: int,
    subject: str = "Tegning",
    *,
    product: str = "inventor",
    opened_days_ago: int = 0,
) -> Any:
    """A phone ticket the company's superuser opened `opened_days_ago` days ago."""
    import datetime

    from backend.services import clock
    from backend.tables import Role, Ticket, User

    superuser = await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )
    ticket = Ticket(
        company=company_id,
        product_code=product,
        subject=subject,
        description="…",
        channel="phone",
        opened_by=superuser.id,
        created_at=clock.now() - datetime.timedelta(days=opened_days_ago),
    )
    ticket.last_activity_at = ticket.created_at
    await ticket.save()
    return ticket


async def make_order(
    company_id: int,
    *,
    kind: str = "topup",
    status: str = "paid",
    hours: int = 5,
    amount: int = 550_000,
) -> Any:
    """An order of the company's superuser straight in the database, paid now unless its
    `status` says otherwise."""
    from backend.services import clock
    from backend.services.money import mva_ore
    from backend.tables import Order, Role, User

    superuser = await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )
    order = Order(
        company=company_id,
        created_by=superuser.id,
        kind=kind,
        status=status,
        hours=hours if kind == "topup" else 0,
        product_codes="inventor,vault",
        amount_ore=amount,
        mva_ore=mva_ore(amount),
        total_ore=amount + mva_ore(amount),
        paid_at=clock.now() if status == "paid" else None,
    )
    await order.save()
    return order
