"""Companies and their superuser: registration and company details (SPEC §1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from piccolo.columns.combination import WhereRaw

from backend.db import is_unique_violation, write_transaction
from backend.i18n import N_, current_language
from backend.services import audit, brreg, business, members, policy, validation
from backend.services.errors import NotFound, ValidationFailed
from backend.services.users import hash_password_async
from backend.tables import AuditKind, Company, Role, User


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


async def register_company(
    form: Registration, register: brreg.Enhetsregisteret | None = None
) -> User:
    """Create a company and its superuser, the person registering (SPEC §1).

    The fields are checked as the form is read (Registration); here what needs the database:
    the organisation number and e-mail are not taken; and what needs Enhetsregisteret, when
    it answers: the company is not deleted, bankrupt or being wound up.
    Nothing is created unless all of it holds.
    """
    errors = await _taken(form)
    if "org_number" not in errors and register is not None:
        errors.update(await _refused(register, form.org_number))
    if errors:
        raise ValidationFailed(errors)

    # Hashed before the transaction: on SQLite an open write transaction holds the database's
    # one write lock, and nobody should wait a quarter of a second for our hash.
    password_hash = await hash_password_async(form.password)
    low_balance_minutes = (await business.current()).low_balance_minutes
    try:
        async with Company._meta.db.transaction():
            company = Company(
                name=form.company_name,
                org_number=form.org_number,
                address=form.address,
                postal_code=form.postal_code,
                city=form.city,
                low_balance_minutes=low_balance_minutes,
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


async def _refused(register: brreg.Enhetsregisteret, org_number: str) -> dict[str, str]:
    refused = brreg.refusal(await register.look_up(org_number))
    return {"org_number": refused} if refused else {}


async def _taken(form: Registration) -> dict[str, str]:
    taken: dict[str, str] = {}
    if await Company.exists().where(Company.org_number == form.org_number):
        taken["org_number"] = ORG_NUMBER_TAKEN
    if await User.exists().where(User.email == form.email):
        taken["email"] = EMAIL_TAKEN
    return taken


class CompanyLookupQuery(msgspec.Struct):
    """The registration form's company fields as they stand when the org.nr. changes;
    `use_register` "1": the user asked for the register's values over what they wrote."""

    org_number: validation.field(str, max_length=40) = ""
    company_name: validation.field(str, max_length=200) = ""
    address: validation.field(str, max_length=200) = ""
    postal_code: validation.field(str, max_length=4) = ""
    city: validation.field(str, max_length=100) = ""
    use_register: validation.field(str, max_length=1) = ""


FILLED_FROM_REGISTER = N_(
    "Fylt inn fra Enhetsregisteret. Sjekk opplysningene – du kan endre dem før du registrerer."
)
OFFERED_FROM_REGISTER = N_("Enhetsregisteret har andre opplysninger om firmaet:")
NOT_IN_REGISTER = N_(
    "Fant ikke organisasjonsnummeret i Enhetsregisteret. Sjekk nummeret, eller fyll inn"
    " firmaopplysningene selv."
)


@dataclass
class CompanyLookup:
    """What the form's company fields show after a lookup: `form` with the fields the
    register fills in (`filled`), `errors` by field, a `notice`, and `offered`: what the
    register has for fields the user had written otherwise. `replace`: the register's values
    were asked for over the user's."""

    form: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
    filled: list[str] = field(default_factory=list)
    offered: dict[str, str] = field(default_factory=dict)
    replace: bool = False


async def look_up_company(
    register: brreg.Enhetsregisteret, query: CompanyLookupQuery
) -> CompanyLookup:
    """The registration form's company fields, the empty ones filled in from Enhetsregisteret.
    An org.nr. that is not valid gets its message; a register that does not answer leaves the
    fields as they were, with no message."""
    typed = msgspec.structs.asdict(query)
    del typed["use_register"]
    result = CompanyLookup(form=dict(typed), replace=query.use_register == "1")
    if not query.org_number.strip():
        return result
    try:
        org_number = validation.org_number(query.org_number)
    except validation.FieldError as error:
        result.errors["org_number"] = error.message
        return result
    entity = await register.look_up(org_number)
    if refused := brreg.refusal(entity):
        result.errors["org_number"] = refused
    elif entity is not None and not entity.registered:
        result.notice = NOT_IN_REGISTER
    else:
        _fill(result, brreg.suggested_fields(entity))
    return result


def _fill(result: CompanyLookup, suggested: dict[str, str]) -> None:
    """An empty field takes the register's value; one written otherwise is offered it."""
    for name, value in suggested.items():
        written = " ".join(result.form[name].split())
        if written == value:
            continue
        if written and not result.replace:
            result.offered[name] = value
        else:
            result.form[name] = value
            result.filled.append(name)
    if result.offered:
        result.notice = OFFERED_FROM_REGISTER
    elif result.filled:
        result.notice = FILLED_FROM_REGISTER


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


class CompanySearch(msgspec.Struct):
    """The companies page's search: name, org.nr. or a user's e-mail."""

    q: validation.field(str, max_length=200) = ""


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (a % or _ typed only widens an admin's search)."""
    return f"%{text}%"


async def list_companies(search: str = "") -> list[dict[str, Any]]:
    """Every company with its superuser, newest first (staff overview); with `search`, those
    whose name or org.nr. contains it, or with a user whose e-mail does (case-insensitive),
    in one query."""
    query = User.select(
        User.company.id.as_alias("id"),
        User.company.name.as_alias("name"),
        User.company.org_number.as_alias("org_number"),
        User.company.city.as_alias("city"),
        User.company.created_at.as_alias("created_at"),
        User.name.as_alias("superuser_name"),
        User.email.as_alias("superuser_email"),
        User.company.active.as_alias("active"),
    ).where(User.role == Role.superuser.value)
    search = " ".join(search.split())
    if search:
        pattern = _like(search.lower())
        digits = search.replace(" ", "")
        query = query.where(
            User.company.name.ilike(pattern)
            | User.company.org_number.like(_like(digits))
            # Any user of the company, not only its superuser (e-mails are kept lower-case).
            | WhereRaw(
                "EXISTS (SELECT 1 FROM portal_user AS m"
                " WHERE m.company = portal_user.company AND m.email LIKE {})",
                pattern,
            )
        )
    return await query.order_by(User.company.created_at, ascending=False)


# --- the back office (issue 12): admins keep a company's details and status ------------------

REASON_REQUIRED = N_("Skriv hvorfor.")


class AdminCompanyDetails(msgspec.Struct):
    """An admin corrects a company's details, saying why."""

    company_name: validation.line(200)
    org_number: validation.OrgNumber
    address: validation.line(200)
    postal_code: validation.PostalCode
    city: validation.line(100)
    reason: validation.line(500, required=REASON_REQUIRED)


class CompanyChange(msgspec.Struct):
    """Deactivate or reactivate a company: why."""

    reason: validation.line(500, required=REASON_REQUIRED)


class SuperuserMove(msgspec.Struct):
    """Move the superuser role to another active member (the customer asked by phone)."""

    member: validation.field(int, ge=1, le=validation.MAX_ID, message=N_("Velg et medlem."))
    reason: validation.line(500, required=REASON_REQUIRED)


_DETAILS = ("name", "org_number", "address", "postal_code", "city")


def _details(company: Company) -> dict[str, str]:
    return {name: getattr(company, name) for name in _DETAILS}


async def edit_company(admin: User, company_id: int, form: AdminCompanyDetails) -> Company:
    """The company's details as the admin wrote them; the audit keeps before and after."""
    policy.require(admin, "manage_companies")
    after = {
        "name": form.company_name,
        "org_number": form.org_number,
        "address": form.address,
        "postal_code": form.postal_code,
        "city": form.city,
    }
    try:
        async with write_transaction(Company._meta.db):
            company = await get_company(company_id)
            before = _details(company)
            if before == after:
                return company  # nothing changed: nothing to record
            if after["org_number"] != before["org_number"] and await Company.exists().where(
                (Company.org_number == form.org_number) & (Company.id != company_id)
            ):
                raise ValidationFailed({"org_number": ORG_NUMBER_TAKEN})
            await Company.update({getattr(Company, k): v for k, v in after.items()}).where(
                Company.id == company_id
            )
            await audit.record(
                admin,
                AuditKind.company_edited,
                company=company_id,
                subject=f"company:{company_id}",
                before=before,
                after=after,
                reason=form.reason,
            )
    except Exception as error:
        if is_unique_violation(error):
            raise ValidationFailed({"org_number": ORG_NUMBER_TAKEN}) from None
        raise
    return await get_company(company_id)


async def set_active(admin: User, company_id: int, active: bool, form: CompanyChange) -> None:
    """Deactivate (its users cannot sign in, their sessions and API tokens stop: the rule is
    users.is_active) or reactivate a company. Nothing is deleted. A second click changes
    nothing and records nothing."""
    policy.require(admin, "manage_companies")
    async with write_transaction(Company._meta.db):
        changed = await (
            Company.update({Company.active: active})
            .where((Company.id == company_id) & (Company.active == (not active)))
            .returning(Company.id)
        )
        if not changed:
            await get_company(company_id)  # NotFound for no such company
            return
        await audit.record(
            admin,
            AuditKind.company_reactivated if active else AuditKind.company_deactivated,
            company=company_id,
            subject=f"company:{company_id}",
            before={"active": not active},
            after={"active": active},
            reason=form.reason,
        )


async def move_superuser(admin: User, company_id: int, form: SuperuserMove) -> User:
    """Give the company's superuser role to another of its active members, by the members
    service's one rule for it (members.swap_superuser: both get the hand-over mails)."""
    policy.require(admin, "manage_companies")
    superuser = await get_superuser(company_id)
    member = await User.objects().get(
        (User.id == form.member)
        & (User.company == company_id)
        & (User.role == Role.member.value)
        & (User.active == True)  # noqa: E712
    )
    if superuser is None or member is None:
        raise ValidationFailed({"member": NOT_A_MEMBER})

    async def record() -> None:
        await audit.record(
            admin,
            AuditKind.superuser_moved,
            company=company_id,
            subject=f"user:{member.id}",
            before={"superuser": superuser.email},
            after={"superuser": member.email},
            reason=form.reason,
        )

    await members.swap_superuser(superuser, member, then=record)
    return member


NOT_A_MEMBER = N_("Velg et aktivt medlem av firmaet.")


async def active_members(company_id: int) -> list[dict[str, Any]]:
    """The company's active users, the superuser first (the staff company page)."""
    rows = await (
        User.select(User.id, User.name, User.email, User.role)
        .where((User.company == company_id) & (User.active == True))  # noqa: E712
        .order_by(User.name)
    )
    return sorted(rows, key=lambda row: row["role"] != Role.superuser.value)
