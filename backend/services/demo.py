"""Demo data for `make run` (PORTAL_DEMO=1). Never used in production (see config)."""

from __future__ import annotations

from backend.services.accounts import create_staff, hash_password
from backend.services.catalog import seed_demo_catalog
from backend.tables import Company, Role, User

DEMO_PASSWORD = "demo-passord-1"
DEMO_ACCOUNTS = (
    ("superbruker@demo.no", "Siri Superbruker", Role.superuser.value),
    ("tekniker@demo.no", "Tore Tekniker", Role.technician.value),
    ("admin@demo.no", "Anne Admin", Role.admin.value),
)


async def seed_demo() -> list[tuple[str, str]]:
    """Idempotent. Returns the demo accounts as (e-mail, role)."""
    await seed_demo_catalog()
    company = await Company.objects().get(Company.org_number == "974760673")
    if company is None:
        company = Company(
            name="Demo Mekanikk AS",
            org_number="974760673",
            address="Industriveien 1",
            postal_code="0581",
            city="Oslo",
        )
        await company.save()
    for email, name, role in DEMO_ACCOUNTS:
        if await User.exists().where(User.email == email):
            continue
        if role == Role.superuser.value:
            await User(
                email=email,
                name=name,
                phone="+4722334455",
                role=role,
                company=company.id,
                password_hash=hash_password(DEMO_PASSWORD),
            ).save()
        else:
            await create_staff(email=email, name=name, role=role, password=DEMO_PASSWORD)
    return [(email, role) for email, _, role in DEMO_ACCOUNTS]
