"""Companies and their superuser: registration and company details (SPEC §1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from backend.db import is_unique_violation
from backend.i18n import N_, current_language
from backend.services import policy, validation
from backend.services.errors import NotFound, ValidationFailed
from backend.services.users import hash_password_async
from backend.tables import Company, Role, User


class CompanyDetails(msgspec.Struct):
    """The company's address and its superuser's contact details."""

    address: validation.line(200)
    postal_code: validation.PostalCode
    city: validation.line(100)
    name: validation.line(200)
    phone: validation.Phone


class Registration(CompanyDetails):
    company_name: validation.line(200)
    org_number: validation.OrgNumber
    email: validation.Email
    password: validation.Password
    password_confirm: validation.PasswordConfirmation

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> dict[str, str]:
        return validation.passwords_match(values, "password", "password_confirm")


ORG_NUMBER_TAKEN = N_("Dette organisasjonsnummeret er allerede registrert.")
EMAIL_TAKEN = N_("Det finnes allerede en bruker med denne e-postadressen.")


async def register_company(form: Registration) -> User:
    """Create a company and its superuser, the person registering (SPEC §1).

    The fields are checked as the form is read (Registration); here what needs the database:
    the organisation number and e-mail are not taken.
    Nothing is created unless all of it holds.
    """
    if taken := await _taken(form):
        raise ValidationFailed(taken)

    # Hashed before the transaction: on SQLite an open write transaction holds the database's
    # one write lock, and nobody should wait a quarter of a second for our hash.
    password_hash = await hash_password_async(form.password)
    try:
        async with Company._meta.db.transaction():
            company = Company(
                name=form.company_name,
                org_number=form.org_number,
                address=form.address,
                postal_code=form.postal_code,
                city=form.city,
            )
            await company.save()
            user = User(
                email=form.email,
                name=form.name,
                phone=form.phone,
                role=Role.superuser.value,
                company=company.id,
                password_hash=password_hash,
                # The language the form was filled in: a choice made before there was a user.
                language=current_language.get(),
            )
            await user.save()
    except Exception as error:
        # Two registrations racing for the same number or e-mail: the loser sees the message.
        if is_unique_violation(error):
            raise ValidationFailed(await _taken(form) or {"email": EMAIL_TAKEN}) from None
        raise
    return user


async def _taken(form: Registration) -> dict[str, str]:
    taken: dict[str, str] = {}
    if await Company.exists().where(Company.org_number == form.org_number):
        taken["org_number"] = ORG_NUMBER_TAKEN
    if await User.exists().where(User.email == form.email):
        taken["email"] = EMAIL_TAKEN
    return taken


async def get_company(company_id: int) -> Company:
    company = await Company.objects().get(Company.id == company_id)
    if company is None:
        raise NotFound("no such company")
    return company


async def get_superuser(company_id: int) -> User | None:
    return await User.objects().get(
        (User.company == company_id) & (User.role == Role.superuser.value)
    )


async def update_company(user: User, form: CompanyDetails) -> Company:
    """The superuser keeps the company's address and their own contact details up to date."""
    policy.require(user, "edit_company")
    async with Company._meta.db.transaction():
        await Company.update(
            {
                Company.address: form.address,
                Company.postal_code: form.postal_code,
                Company.city: form.city,
            }
        ).where(Company.id == user.company)
        await User.update({User.name: form.name, User.phone: form.phone}).where(User.id == user.id)
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
