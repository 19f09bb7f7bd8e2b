"""Existing customers (issue 12, SPEC §1 admin): an admin onboards a company that was a customer
before the portal — the company, its superuser (mailed a link to choose their password), and
what it had bought: its current plan with its original start and end, and/or its prepaid
balance as a lot with its original purchase and expiry dates and an `import` ledger entry
naming the old contract.

One customer comes from the form, many from a CSV file (`read_csv`). Both are checked by the
same rules (`check_customers`): the registration's field rules (validation.py), the dates,
products from the catalog, an org.nr. or e-mail neither in the portal nor twice in the file
("finnes allerede": an import never merges into an existing company). A CSV import is a dry
run first (nothing is written), then a confirmation that checks the file again and imports
every row in one transaction, or none. The file's SHA-256 names the import: confirming it
again (a double click) imports nothing more.

Each company imported is one audit entry (kind `import`), with the admin and the reason.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime
import hashlib
import io
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from backend.db import is_unique_violation, write_transaction
from backend.i18n import N_
from backend.services import (
    account_links,
    agreements,
    attachments,
    audit,
    business,
    clock,
    ledger,
    outbox,
    policy,
    staff_accounts,
    users,
    validation,
)
from backend.services.errors import ValidationFailed
from backend.services.validation import FieldError
from backend.tables import (
    AuditEntry,
    AuditKind,
    Company,
    EntryKind,
    LinkPurpose,
    Product,
    Role,
    User,
)

MAX_ROWS = 1000
MAX_FILE_BYTES = 512 * 1024
MAX_BALANCE_HOURS = 1000
# A plan's end this far ahead is a typing error, not an old contract.
MAX_PLAN_YEARS_AHEAD = 3
# A lot is valid a year; one extended by the old contract, at most as far as an admin may
# extend a lot here. Older than ten years back is a typo, not a customer.
MAX_LOT_YEARS_AHEAD = 2
MAX_YEARS_BACK = 10
HOURS, MINUTES = "timer", "minutter"

REASON_REQUIRED = N_("Skriv en begrunnelse.")
CONTRACT_REQUIRED = N_("Skriv referansen til den gamle avtalen.")
DATE_INVALID = N_("Skriv datoen som åååå-mm-dd eller dd.mm.åååå.")
BALANCE_INVALID = N_("Skriv saldoen som et helt tall (høyst 1000 timer).")
UNIT_INVALID = N_("Enheten skal være «timer» eller «minutter».")
ORG_NUMBER_EXISTS = N_("Organisasjonsnummeret finnes allerede i portalen.")
EMAIL_EXISTS = N_("E-postadressen finnes allerede i portalen.")
ORG_NUMBER_TWICE = N_("Organisasjonsnummeret står på flere rader i filen.")
EMAIL_TWICE = N_("E-postadressen står på flere rader i filen.")
PRODUCTS_UNKNOWN = N_("Ukjent produkt. Bruk produktkodene fra katalogen.")
PLAN_PRODUCTS_MISSING = N_("Velg hvilke produkter avtalen dekker.")
PLAN_DATES_MISSING = N_("Skriv avtalens startdato og sluttdato.")
PLAN_ENDS_BEFORE_START = N_("Sluttdatoen må være etter startdatoen.")
PLAN_ENDED = N_("Avtalen er allerede utløpt og kan ikke importeres.")
PLAN_TOO_LONG = N_("Sluttdatoen kan være høyst tre år fram i tid.")
LOT_TOO_LONG = N_("Siste gyldige dag kan være høyst to år fram i tid.")
TOO_FAR_BACK = N_("Datoen kan være høyst ti år tilbake i tid.")
LOT_PRODUCTS_MISSING = N_("Velg hvilke produkter timene dekker.")
LOT_DATES_MISSING = N_("Skriv kjøpsdato og siste gyldige dag for timene.")
LOT_BOUGHT_LATER = N_("Kjøpsdatoen kan ikke være etter i dag.")
LOT_ENDS_BEFORE_PURCHASE = N_("Siste gyldige dag må være etter kjøpsdatoen.")
LOT_EXPIRED = N_("Timene er allerede utløpt og kan ikke importeres.")
LOT_WITHOUT_BALANCE = N_("Skriv saldoen, eller la feltene for timer stå tomme.")


def parse_day(value: str) -> datetime.date:
    """A date as `<input type=date>` sends it (2026-03-01) or as Norwegians and Excel write it
    (01.03.2026)."""
    text = value.strip()
    try:
        if "." in text:
            day, month, year = text.split(".")
            if len(year) != 4:
                raise ValueError(text)
            return datetime.date(int(year), int(month), int(day))
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise FieldError(DATE_INVALID) from None


def _optional_day(value: str) -> str:
    if value.strip():
        parse_day(value)
    return value.strip()


def _balance(value: str) -> str:
    if value.strip() and validation.whole_number(value, 1, MAX_BALANCE_HOURS * 60) is None:
        raise FieldError(BALANCE_INVALID)
    return value.strip()


def _unit(value: str) -> str:
    unit = value.strip().lower() or HOURS
    if unit not in (HOURS, MINUTES):
        raise FieldError(UNIT_INVALID)
    return unit


Day = validation.field(str, max_length=20, message=DATE_INVALID, check=_optional_day)
Codes = list[validation.field(str, max_length=40, message=PRODUCTS_UNKNOWN)]


class Customer(msgspec.Struct):
    """One existing customer: the company, its superuser, the old contract's reference, and
    optionally its plan (products, first and last day) and prepaid balance (how much, in hours
    or minutes, the products, the day it was bought and its last usable day)."""

    org_number: validation.OrgNumber
    company_name: validation.line(200)
    address: validation.line(200)
    postal_code: validation.PostalCode
    city: validation.line(100)
    name: validation.line(200)
    email: validation.Email
    phone: validation.Phone
    contract: validation.line(100, required=CONTRACT_REQUIRED)
    plan_products: Codes = msgspec.field(default_factory=list)
    plan_starts_on: Day = ""
    plan_ends_on: Day = ""
    balance: validation.field(str, max_length=12, message=BALANCE_INVALID, check=_balance) = ""
    unit: validation.field(str, max_length=12, message=UNIT_INVALID, check=_unit) = HOURS
    lot_products: Codes = msgspec.field(default_factory=list)
    bought_on: Day = ""
    last_day: Day = ""


class Onboarding(Customer, kw_only=True):
    """The onboarding form: one customer, why, and a key that makes a double submit one."""

    reason: validation.line(500, required=REASON_REQUIRED)
    idempotency_key: validation.field(str, max_length=64, pattern=r"^[A-Za-z0-9_-]*$") = ""


@dataclass(frozen=True)
class PlanImport:
    starts_on: datetime.date
    ends_on: datetime.date  # inclusive, as every plan's
    product_codes: list[str]


@dataclass(frozen=True)
class LotImport:
    minutes: int
    bought_on: datetime.date
    last_day: datetime.date  # the last day it pays for support ("til og med")
    product_codes: list[str]

    @property
    def expires_on(self) -> datetime.date:
        return ledger.expires_after(self.last_day)


@dataclass(frozen=True)
class Prepared:
    """What importing one customer creates."""

    customer: Customer
    plan: PlanImport | None
    lot: LotImport | None


def _codes(codes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(code.strip() for code in codes if code.strip()))


def _prepare(
    customer: Customer, today: datetime.date, known: set[str]
) -> tuple[Prepared, dict[str, str]]:
    """The plan and lot `customer` brings, and what is wrong with them, by field."""
    errors: dict[str, str] = {}
    plan = lot = None

    plan_codes = _codes(customer.plan_products)
    if plan_codes or customer.plan_starts_on or customer.plan_ends_on:
        if not plan_codes:
            errors["plan_products"] = PLAN_PRODUCTS_MISSING
        elif not set(plan_codes) <= known:
            errors["plan_products"] = PRODUCTS_UNKNOWN
        if not customer.plan_starts_on:
            errors["plan_starts_on"] = PLAN_DATES_MISSING
        if not customer.plan_ends_on:
            errors["plan_ends_on"] = PLAN_DATES_MISSING
        if customer.plan_starts_on and customer.plan_ends_on:
            starts_on = parse_day(customer.plan_starts_on)
            ends_on = parse_day(customer.plan_ends_on)
            if starts_on < agreements.add_years(today, -MAX_YEARS_BACK):
                errors["plan_starts_on"] = TOO_FAR_BACK
            elif ends_on <= starts_on:
                errors["plan_ends_on"] = PLAN_ENDS_BEFORE_START
            elif ends_on < today:
                errors["plan_ends_on"] = PLAN_ENDED
            elif ends_on > agreements.add_years(today, MAX_PLAN_YEARS_AHEAD):
                errors["plan_ends_on"] = PLAN_TOO_LONG
            elif "plan_products" not in errors:
                plan = PlanImport(starts_on, ends_on, plan_codes)

    lot_codes = _codes(customer.lot_products)
    if customer.balance or lot_codes or customer.bought_on or customer.last_day:
        if not customer.balance:
            errors["balance"] = LOT_WITHOUT_BALANCE
        if not lot_codes:
            errors["lot_products"] = LOT_PRODUCTS_MISSING
        elif not set(lot_codes) <= known:
            errors["lot_products"] = PRODUCTS_UNKNOWN
        if not customer.bought_on:
            errors["bought_on"] = LOT_DATES_MISSING
        if not customer.last_day:
            errors["last_day"] = LOT_DATES_MISSING
        if customer.bought_on and customer.last_day:
            bought_on = parse_day(customer.bought_on)
            last_day = parse_day(customer.last_day)
            if bought_on > today:
                errors["bought_on"] = LOT_BOUGHT_LATER
            elif bought_on < agreements.add_years(today, -MAX_YEARS_BACK):
                errors["bought_on"] = TOO_FAR_BACK
            elif last_day <= bought_on:
                errors["last_day"] = LOT_ENDS_BEFORE_PURCHASE
            elif last_day < today:
                errors["last_day"] = LOT_EXPIRED
            elif last_day > agreements.add_years(today, MAX_LOT_YEARS_AHEAD):
                errors["last_day"] = LOT_TOO_LONG
            elif customer.balance and not errors:
                amount = int(customer.balance)
                minutes = amount * 60 if customer.unit == HOURS else amount
                if minutes > MAX_BALANCE_HOURS * 60:
                    errors["balance"] = BALANCE_INVALID
                else:
                    lot = LotImport(minutes, bought_on, last_day, lot_codes)
    return Prepared(customer, plan, lot), errors


async def check_customers(
    customers: list[Customer], today: datetime.date
) -> list[tuple[Prepared, dict[str, str]]]:
    """Each customer's import and its errors by field: the dates and products, and the
    org.nr. and e-mail neither in the portal nor on an earlier row (two queries in all)."""
    known = {row["code"] for row in await Product.select(Product.code)}
    org_numbers = [c.org_number for c in customers]
    emails = [c.email for c in customers]
    taken_orgs = {
        row["org_number"]
        for row in await Company.select(Company.org_number).where(
            Company.org_number.is_in(org_numbers or [""])
        )
    }
    taken_emails = {
        row["email"]
        for row in await User.select(User.email).where(User.email.is_in(emails or [""]))
    }
    seen_orgs: set[str] = set()
    seen_emails: set[str] = set()
    checked = []
    for customer in customers:
        prepared, errors = _prepare(customer, today, known)
        if customer.org_number in taken_orgs:
            errors["org_number"] = ORG_NUMBER_EXISTS
        elif customer.org_number in seen_orgs:
            errors["org_number"] = ORG_NUMBER_TWICE
        if customer.email in taken_emails:
            errors["email"] = EMAIL_EXISTS
        elif customer.email in seen_emails:
            errors["email"] = EMAIL_TWICE
        seen_orgs.add(customer.org_number)
        seen_emails.add(customer.email)
        checked.append((prepared, errors))
    return checked


def _summary(prepared: Prepared) -> dict[str, Any]:
    """What the audit entry keeps of an import."""
    customer = prepared.customer
    summary: dict[str, Any] = {
        "org_number": customer.org_number,
        "name": customer.company_name,
        "superuser": customer.email,
        "contract": customer.contract,
    }
    if prepared.plan:
        summary["plan"] = {
            "starts_on": prepared.plan.starts_on.isoformat(),
            "ends_on": prepared.plan.ends_on.isoformat(),
            "products": prepared.plan.product_codes,
        }
    if prepared.lot:
        summary["lot"] = {
            "minutes": prepared.lot.minutes,
            "bought_on": prepared.lot.bought_on.isoformat(),
            "last_day": prepared.lot.last_day.isoformat(),
            "products": prepared.lot.product_codes,
        }
    return summary


def lot_note(lot: LotImport, contract: str) -> str:
    """The import entry's note, on the customer's statement: the old contract and the lot's
    original dates (the entry itself is dated the day of the import)."""
    return (
        f"Overført fra avtale {contract}: kjøpt {lot.bought_on:%d.%m.%Y},"
        f" gyldig til og med {lot.last_day:%d.%m.%Y}"
    )


async def _create(
    admin: User, prepared: Prepared, password_hash: str, *, subject: str, reason: str
) -> Company:
    """Inside the caller's write transaction: the company, its superuser, plan, lot, the
    invitation mail and the audit entry."""
    customer = prepared.customer
    company = Company(
        name=customer.company_name,
        org_number=customer.org_number,
        address=customer.address,
        postal_code=customer.postal_code,
        city=customer.city,
        # As a registered company starts (services/business.py).
        low_balance_minutes=(await business.current()).low_balance_minutes,
    )
    await company.save()
    user = User(
        email=customer.email,
        name=customer.name,
        phone=customer.phone,
        role=Role.superuser.value,
        company=company.id,
        password_hash=password_hash,
    )
    await user.save()
    if prepared.plan:
        await agreements.create_plan(
            company_id=company.id,
            product_codes=prepared.plan.product_codes,
            starts_on=prepared.plan.starts_on,
            ends_on=prepared.plan.ends_on,
        )
    if prepared.lot:
        await ledger.credit_lot(
            company_id=company.id,
            minutes=prepared.lot.minutes,
            expires_on=prepared.lot.expires_on,
            product_codes=prepared.lot.product_codes,
            key=f"import:company:{company.id}",
            cause=ledger.Cause(
                type="import",
                id=customer.contract[:64],
                note=lot_note(prepared.lot, customer.contract),
                user_id=admin.id,
            ),
            kind=EntryKind.import_,
            bought_at=datetime.datetime.combine(
                prepared.lot.bought_on, datetime.time(12), clock.OSLO
            ),
        )
    link = await account_links.issue(
        user.id, LinkPurpose.password_reset, staff_accounts.INVITATION_LIFETIME
    )
    await outbox.queue(
        user.email,
        "customer_invitation",
        {"user": user, "company": company, "token": link.token},
        f"customer-invitation:{link.id}",
        language=users.language_of(user),
    )
    await audit.record(
        admin,
        AuditKind.import_,
        company=company.id,
        subject=subject,
        after=_summary(prepared),
        reason=reason,
    )
    return company


async def _unknown_password() -> str:
    """A hash of a password nobody knows, until the invitation's link sets one: one hash for
    a whole import (hashing is slow on purpose), each user's own once they choose."""
    return await users.hash_password_async(secrets.token_urlsafe(32))


async def _imported(subject: str) -> list[int]:
    """The companies an import named `subject` created (empty: not imported)."""
    rows = await AuditEntry.select(AuditEntry.company).where(
        (AuditEntry.kind == AuditKind.import_.value) & (AuditEntry.subject == subject)
    )
    return [row["company"] for row in rows]


def _form_subject(key: str) -> str:
    return f"onboarding:{key}"


async def onboard(admin: User, values: dict[str, Any]) -> int:
    """One existing customer from the form: every field's message at once, or the company
    (its id) created with all it brings, in one transaction. The form's key makes a double
    submit one onboarding: the second answers the first's company."""
    policy.require(admin, "onboard_customers")
    form = validation.convert(values, Onboarding)
    subject = _form_subject(form.idempotency_key or secrets.token_hex(16))
    if done := await _imported(subject):
        return done[0]
    [(prepared, errors)] = await check_customers([form], clock.today())
    if errors:
        raise ValidationFailed(errors, values)
    password_hash = await _unknown_password()
    try:
        async with write_transaction(Company._meta.db):
            company = await _create(
                admin, prepared, password_hash, subject=subject, reason=form.reason
            )
    except Exception as error:
        if not is_unique_violation(error):
            raise
        if done := await _imported(subject):
            return done[0]  # the other click won
        [(_, errors)] = await check_customers([form], clock.today())
        raise ValidationFailed(errors or {"org_number": ORG_NUMBER_EXISTS}, values) from None
    return company.id


# --- CSV ------------------------------------------------------------------------------------

# The file's columns (its first line) and the form fields they fill. The first nine are needed
# in every file; the plan's and balance's may be left out. Products: catalog codes separated
# by spaces. Dates: 2026-03-01 or 01.03.2026.
COLUMNS: dict[str, str] = {
    "orgnr": "org_number",
    "firmanavn": "company_name",
    "adresse": "address",
    "postnummer": "postal_code",
    "poststed": "city",
    "kontaktperson": "name",
    "epost": "email",
    "telefon": "phone",
    "kontrakt": "contract",
    "avtale_produkter": "plan_products",
    "avtale_fra": "plan_starts_on",
    "avtale_til": "plan_ends_on",
    "saldo": "balance",
    "enhet": "unit",
    "saldo_produkter": "lot_products",
    "kjopt": "bought_on",
    "gyldig_til": "last_day",
}
REQUIRED_COLUMNS = tuple(COLUMNS)[:9]
COLUMN_OF = {name: column for column, name in COLUMNS.items()}

FILE_MISSING = N_("Velg en CSV-fil.")
FILE_TOO_BIG = N_("Filen er for stor (høyst 512 kB).")
FILE_NOT_TEXT = N_("Filen er ikke en CSV-fil i UTF-8. Lagre den som «CSV UTF-8» og prøv igjen.")
FILE_EMPTY = N_("Filen har ingen rader med kunder.")
FILE_TOO_MANY_ROWS = N_("Filen har mer enn 1000 rader. Del den opp.")
FILE_NOT_CSV = N_("Filen kan ikke leses som CSV.")
COLUMNS_MISSING = N_("Kolonner mangler i første linje: %(columns)s.")
COLUMNS_UNKNOWN = N_("Ukjente kolonner i første linje: %(columns)s.")
COLUMNS_TWICE = N_("Kolonner som står to ganger i første linje: %(columns)s.")
ROW_WIDTH = N_("Raden har %(found)s felt, men første linje har %(expected)s.")
DATA_INVALID = N_("Filen fra kontrollen er ødelagt. Last den opp på nytt.")


class CsvUpload(msgspec.Struct):
    """The upload form, beside its file: why the customers are imported."""

    reason: validation.line(500, required=REASON_REQUIRED)


class CsvConfirm(msgspec.Struct):
    """The dry run's confirmation: the file as it was checked (base64), and the reason."""

    data: validation.field(
        str, max_length=MAX_FILE_BYTES * 2, pattern=r"^[A-Za-z0-9+/=]*$", message=DATA_INVALID
    )
    reason: validation.line(500, required=REASON_REQUIRED)


@dataclass(frozen=True)
class Message:
    """A message about the file (row 0) or a row's column, with its variables."""

    text: str
    row: int = 0
    column: str = ""
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class CsvRow:
    number: int  # the file's line number, as a spreadsheet shows it (the header is 1)
    prepared: Prepared | None
    messages: list[Message]


@dataclass
class CsvCheck:
    """A file checked: each row with what it would create and its messages, and the messages
    about the file itself. `sha256` names the file; `data` carries it to the confirmation."""

    sha256: str
    data: str
    separator: str = ";"
    rows: list[CsvRow] = field(default_factory=list)
    file_messages: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.file_messages and all(not row.messages for row in self.rows)

    @property
    def messages(self) -> list[Message]:
        return [*self.file_messages, *(m for row in self.rows for m in row.messages)]


def _separator(header_line: str) -> str:
    """`;` (Excel set up for Norway) when the first line has one, else `,`."""
    return ";" if ";" in header_line else ","


def _row_values(cells: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column, text in cells.items():
        name = COLUMNS[column]
        values[name] = text.split() if name in ("plan_products", "lot_products") else text
    return values


def _parse(data: bytes) -> tuple[CsvCheck, list[tuple[int, dict[str, Any]]]]:
    """The file's rows as form values, or the messages that stop it being read."""
    check = CsvCheck(sha256=hashlib.sha256(data).hexdigest(), data=base64.b64encode(data).decode())
    if not data.strip():
        check.file_messages.append(Message(FILE_EMPTY))
        return check, []
    if len(data) > MAX_FILE_BYTES:
        check.file_messages.append(Message(FILE_TOO_BIG))
        return check, []
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError:
        check.file_messages.append(Message(FILE_NOT_TEXT))
        return check, []
    # Line ends as any spreadsheet writes them (CR LF, LF, an old Mac's CR).
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if validation.has_control_characters(text.replace("\t", " ")):
        check.file_messages.append(Message(FILE_NOT_TEXT))
        return check, []
    check.separator = _separator(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=check.separator)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        unknown = [c for c in header if c not in COLUMNS]
        twice = sorted({c for c in header if header.count(c) > 1})
        for problem, columns in (
            (COLUMNS_MISSING, missing),
            (COLUMNS_UNKNOWN, unknown),
            (COLUMNS_TWICE, twice),
        ):
            if columns:
                shown = ", ".join(c or '""' for c in columns)
                check.file_messages.append(Message(problem, variables={"columns": shown}))
        if check.file_messages:
            return check, []
        rows: list[tuple[int, dict[str, Any]]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # an empty line, as spreadsheets leave at the end
            number = reader.line_num
            if len(rows) + len(check.rows) == MAX_ROWS:
                check.file_messages.append(Message(FILE_TOO_MANY_ROWS))
                return check, []
            if len(cells) != len(header):
                variables = {"found": len(cells), "expected": len(header)}
                check.rows.append(CsvRow(number, None, [Message(ROW_WIDTH, number, "", variables)]))
                continue
            rows.append((number, _row_values(dict(zip(header, cells, strict=True)))))
    except csv.Error:
        check.file_messages.append(Message(FILE_NOT_CSV))
        return check, []
    if not rows and not check.rows:
        check.file_messages.append(Message(FILE_EMPTY))
    return check, rows


async def check_csv(data: bytes, today: datetime.date) -> CsvCheck:
    """The dry run: every row read and checked as the form is, and against the portal and the
    rest of the file; every message with its row and column. Writes nothing."""
    check, rows = _parse(data)
    converted: list[tuple[int, Customer]] = []
    for number, values in rows:
        try:
            converted.append((number, validation.convert(values, Customer)))
        except ValidationFailed as failed:
            messages = [
                Message(text, number, COLUMN_OF.get(name, name))
                for name, text in failed.errors.items()
            ]
            check.rows.append(CsvRow(number, None, messages))
    checked = await check_customers([customer for _, customer in converted], today)
    for (number, _), (prepared, errors) in zip(converted, checked, strict=True):
        messages = [Message(text, number, COLUMN_OF[name]) for name, text in errors.items()]
        check.rows.append(CsvRow(number, prepared, messages))
    check.rows.sort(key=lambda row: row.number)
    return check


async def dry_run(
    admin: User, values: dict[str, Any], files: list[attachments.IncomingFile]
) -> CsvCheck:
    """The upload form (`CsvUpload` and one file) checked, as `check_csv`; a missing reason
    or file raises ValidationFailed."""
    policy.require(admin, "onboard_customers")
    errors = {} if len(files) == 1 else {"files": FILE_MISSING}
    validation.convert(values, CsvUpload, errors=errors)
    return await check_csv(files[0].data, clock.today())


def _csv_subject(sha256: str) -> str:
    return f"csv:{sha256}"


@dataclass(frozen=True)
class CsvResult:
    """A confirmation's outcome: the companies imported, or the check that refused it."""

    company_ids: list[int]
    check: CsvCheck | None = None


def decode_data(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


async def import_csv(admin: User, form: CsvConfirm) -> CsvResult:
    """Import every row of the file checked in the dry run, in one transaction, after checking
    it again (the portal may have changed since); any message imports nothing and the check
    is returned. A file already imported (a second click) imports nothing more."""
    policy.require(admin, "onboard_customers")
    data = decode_data(form.data)
    if data is None:
        raise ValidationFailed({"form": DATA_INVALID})
    subject = _csv_subject(hashlib.sha256(data).hexdigest())
    if done := await _imported(subject):
        return CsvResult(done)
    check = await check_csv(data, clock.today())
    if not check.ok:
        return CsvResult([], check)
    password_hash = await _unknown_password()
    created: list[int] = []
    try:
        async with write_transaction(Company._meta.db):
            if done := await _imported(subject):
                return CsvResult(done)
            for row in check.rows:
                assert row.prepared is not None  # a row without one has a message
                company = await _create(
                    admin, row.prepared, password_hash, subject=subject, reason=form.reason
                )
                created.append(company.id)
    except Exception as error:
        if not is_unique_violation(error):
            raise
        if done := await _imported(subject):
            return CsvResult(done)  # the other click won
        return CsvResult([], await check_csv(data, clock.today()))
    return CsvResult(created)


async def recent_imports(limit: int = 20) -> list[dict[str, Any]]:
    """The latest companies onboarded, newest first (the onboarding page)."""
    return await (
        AuditEntry.select(
            AuditEntry.created_at,
            AuditEntry.company.as_alias("company_id"),
            AuditEntry.company.name.as_alias("company_name"),
            AuditEntry.company.org_number.as_alias("org_number"),
            AuditEntry.actor.name.as_alias("actor_name"),
            AuditEntry.subject,
            AuditEntry.reason,
        )
        .where(AuditEntry.kind == AuditKind.import_.value)
        .order_by(AuditEntry.id, ascending=False)
        .limit(limit)
    )
