"""Demo data for `make run` (PORTAL_DEMO=1). Never used in production (see config)."""

from __future__ import annotations

from backend.services import advisories, clock, coverage, inbound_mail, ledger, members, tickets
from backend.services.catalog import seed_demo_catalog
from backend.services.users import create_staff, hash_password
from backend.tables import Advisory, Company, InboundMail, Invitation, Role, Ticket, User

DEMO_PASSWORD = "demo-passord-1"
DEMO_ACCOUNTS = (
    ("superbruker@demo.no", "Siri Superbruker", Role.superuser.value),
    ("tekniker@demo.no", "Tore Tekniker", Role.technician.value),
    ("admin@demo.no", "Anne Admin", Role.admin.value),
    ("medlem@demo.no", "Mona Medlem", Role.member.value),
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
        if role in (Role.superuser.value, Role.member.value):
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
    await _seed_support_history(company.id)
    await _seed_invitation()
    await _seed_mail()
    await _seed_advisories()
    return [(email, role) for email, _, role in DEMO_ACCOUNTS]


DEMO_INVITEE = "kollega@demo.no"


async def _seed_invitation() -> None:
    """A colleague invited and not yet joined: the invitation mail is at /dev/mail."""
    if await Invitation.exists().where(Invitation.email == DEMO_INVITEE):
        return
    superuser = await User.objects().get(User.email == DEMO_ACCOUNTS[0][0])
    await members.invite(superuser, {"email": DEMO_INVITEE})


async def _seed_support_history(company_id: int) -> None:
    """A lived-in account: 10 prepaid hours and a few tickets with time logged on them."""
    if await Ticket.exists().where(Ticket.company == company_id):
        return
    superuser = await User.objects().get(User.email == DEMO_ACCOUNTS[0][0])
    technician = await User.objects().get(User.email == DEMO_ACCOUNTS[1][0])
    today = clock.today()
    await ledger.credit_lot(
        company_id=company_id,
        minutes=600,
        expires_on=ledger.lot_expires_on(today),
        product_codes=["inventor", "vault"],
        key="demo:lot",
        cause=ledger.Cause(type="admin", note="Demo"),
    )
    history = [
        (
            "inventor",
            "Skissen låser seg etter oppdatering",
            "resolved",
            40,
            "Prøv å tilbakestille skisseinnstillingene under Verktøy → Innstillinger.",
        ),
        (
            "vault",
            "Kan ikke sjekke inn tegninger",
            "waiting_for_customer",
            20,
            "Hvilken versjon av Vault-klienten bruker dere?",
        ),
        ("fusion", "Verktøybane for 5-akse", "open", 0, ""),
    ]
    for n, (product, subject, status, minutes, answer) in enumerate(history):
        ticket = await tickets.open_ticket(
            superuser,
            {
                "product": product,
                "subject": subject,
                "description": f"{subject}. Gjelder alle maskinene på verkstedet.",
            },
        )
        if answer:
            await tickets.add_message(technician, ticket, answer)
            await tickets.add_message(technician, ticket, "Kunden har vært på kurs.", internal=True)
        if minutes:
            await coverage.record_time_entry(
                ticket=ticket,
                technician=technician,
                actual=minutes,
                performed_on=today,
                channel="phone",
                note="Telefon",
                key=f"demo:time:{n}",
            )
        await tickets.set_status(technician, ticket, status)


DEMO_MAILS = (
    (
        DEMO_ACCOUNTS[0][0],
        "Inventor CAM lager feil G-kode",
        "Hei!\nEtter oppdateringen lager Inventor CAM G-kode med feil verktøykorreksjon.",
    ),
    (
        "ola@ukjent-verksted.no",
        "Hjelp med Vault-lisens",
        "Hei, vi vurderer å kjøpe support. Hvordan flytter vi Vault-lisensen til en ny server?",
    ),
)


async def _seed_mail() -> None:
    """Support by e-mail as if it had come in: a ticket from the superuser's mail (with its
    auto-reply at /dev/mail) and a stranger's mail in the staff inbox."""
    if await InboundMail.exists():
        return
    for n, (sender, subject, text) in enumerate(DEMO_MAILS):
        raw = (
            f"From: {sender}\r\nTo: support@localhost\r\nSubject: {subject}\r\n"
            f"Message-ID: <demo-{n}@demo.no>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            f"\r\n{text}\r\n"
        )
        await inbound_mail.receive(raw.encode(), sender, ["support@localhost"])


DEMO_ADVISORIES = (
    (
        {
            "product": "inventor",
            "title": "Inventor 2027.1 Update",
            "verdict": "wait",
            "summary": "Vent: iLogic-regler med eksterne regler feiler ved åpning.",
            "details": "Sammenstillinger med eksterne iLogic-regler gir feilmelding ved åpning."
            "\nLøsning: bli på 2027.0 til Hotfix 1 kommer. Frakoblede regler virker.",
            "applies_to": "Inventor 2027, 2027.1",
        },
        None,
    ),
    (
        {
            "product": "vault",
            "title": "Vault 2027 Hotfix 2",
            "verdict": "known_problems",
            "summary": "Kjente problemer med innsjekking fra AutoCAD Mechanical.",
            "details": "Innsjekking av tegninger med eksterne referanser kan henge."
            "\nLøsning: sjekk inn referansene først.",
            "applies_to": "Vault Professional 2027",
        },
        {"verdict": "safe", "summary": "Hotfix 2a retter innsjekkingen: trygt å installere."},
    ),
    (
        {
            "product": "inventor-cam",
            "title": "Inventor CAM 2027 postprosessor-oppdatering",
            "verdict": "do_not_install",
            "summary": "Ikke installer: endrer verktøykompensasjon i Heidenhain-postprosessoren.",
            "details": "Postprosessoren for Heidenhain TNC 640 skriver feil radiuskompensasjon."
            "\nLøsning: behold forrige postprosessor.",
            "applies_to": "",
        },
        None,
    ),
)


async def _seed_advisories() -> None:
    """A few update advisories, one revised (its verdict history shows)."""
    technician = await User.objects().get(User.email == DEMO_ACCOUNTS[1][0])
    for form, revision in DEMO_ADVISORIES:
        if await Advisory.exists().where(Advisory.title == form["title"]):
            continue
        advisory = await advisories.publish(technician, form)
        if revision is not None:
            await advisories.revise(technician, advisory.id, revision)
