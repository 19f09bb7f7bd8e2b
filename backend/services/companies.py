"""Companies and their superuser: registration and company details (SPEC §1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.db import is_unique_violation
from backend.i18n import N_
from backend.services import validation
from backend.services.accounts import hash_password_async
from backend.services.errors import NotAllowed, ValidationFailed
from backend.tables import Company, Role, User

REGISTRATION_FIELDS = (
    "company_name",
    "org_number",
    "address",
    "postal_code",
    "city",
    "name",
    "email",
    "phone",
    "password",
    "password_confirm",
)
COMPANY_FIELDS = ("address", "postal_code", "city", "name", "phone")

ORG_NUMBER_TAKEN = N_("Dette organisasjonsnummeret er allerede registrert.")
EMAIL_TAKEN = N_("Det finnes allerede en bruker med denne e-postadressen.")


def _address_rules() -> dict[str, Any]:
    return {
        "address": lambda v: validation.text(v, max_length=200),
        "postal_code": validation.postal_code,
        "city": lambda v: validation.text(v, max_length=100),
        "name": lambda v: validation.text(v, max_length=200),
        "phone": validation.phone,
    }


async def register_company(form: Mapping[str, str]) -> User:
    """Create a company and its superuser, the person registering (SPEC §1).

    Every field is checked and every message returned at once; nothing is created unless all
    of it is valid and the organisation number and e-mail are not taken.
    """
    rules = {
        "company_name": lambda v: validation.text(v, max_length=200),
        "org_number": validation.org_number,
        **_address_rules(),
        "email": validation.email,
        "password": validation.password,
        "password_confirm": lambda v: validation.password_confirmation(v, form.get("password", "")),
    }
    try:
        cleaned = validation.clean(form, rules)
        errors: dict[str, str] = {}
    except ValidationFailed as failed:
        errors = failed.errors
        cleaned = {}
    # Taken values are reported together with the other messages.
    taken = await _taken(form)
    errors = {**taken, **errors}
    if errors:
        raise ValidationFailed(errors)

    # Hashed before the transaction: on SQLite an open write transaction holds the database's
    # one write lock, and nobody should wait a quarter of a second for our hash.
    password_hash = await hash_password_async(cleaned["password"])
    try:
        async with Company._meta.db.transaction():
            company = Company(
                name=cleaned["company_name"],
                org_number=cleaned["org_number"],
                address=cleaned["address"],
                postal_code=cleaned["postal_code"],
                city=cleaned["city"],
            )
            await company.save()
            user = User(
                email=cleaned["email"],
                name=cleaned["name"],
                phone=cleaned["phone"],
                role=Role.superuser.value,
                company=company.id,
                password_hash=password_hash,
            )
            await user.save()
    except Exception as error:
        # Two registrations racing for the same number or e-mail: the loser sees the message.
        if is_unique_violation(error):
            raise ValidationFailed(await _taken(form) or {"email": EMAIL_TAKEN}) from None
        raise
    return user


async def _taken(form: Mapping[str, str]) -> dict[str, str]:
    taken: dict[str, str] = {}
    try:
        org_number = validation.org_number(form.get("org_number", ""))
        if await Company.exists().where(Company.org_number == org_number):
            taken["org_number"] = ORG_NUMBER_TAKEN
    except validation.FieldError:
        pass
    try:
        email = validation.email(form.get("email", ""))
        if await User.exists().where(User.email == email):
            taken["email"] = EMAIL_TAKEN
    except validation.FieldError:
        pass
    return taken


async def get_company(company_id: int) -> Company:
    company = await Company.objects().get(Company.id == company_id)
    if company is None:
        raise NotAllowed("no such company")
    return company


async def get_superuser(company_id: int) -> User | None:
    return await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )


async def update_company(user: User, form: Mapping[str, str]) -> Company:
    """The superuser keeps the company's address and their own contact details up to date."""
    if user.role != Role.superuser.value or user.company is None:
        raise NotAllowed("only the superuser edits company details")
    cleaned = validation.clean(form, _address_rules())
    async with Company._meta.db.transaction():
        await Company.update(
            {
                Company.address: cleaned["address"],
                Company.postal_code: cleaned["postal_code"],
                Company.city: cleaned["city"],
            }
        ).where(Company.id == user.company)
        await User.update({User.name: cleaned["name"], User.phone: cleaned["phone"]}).where(
            User.id == user.id
        )
    return await get_company(user.company)


async def list_companies() -> list[dict[str, Any]]:
    """Every company with its superuser, newest first (staff overview)."""
    return await (
        User.select(
            User.company.id.as_alias("id"),
            User.company.name.as_alias("name"),
            User.company.org_number.as_alias("org_number"),
            User.company.city.as_alias("city"),
            User.company.created_at.as_alias("created_at"),
            User.name.as_alias("superuser_name"),
            User.email.as_alias("superuser_email"),
        )
        .where(User.role == Role.superuser.value)
        .order_by(User.company.created_at, ascending=False)
    )
