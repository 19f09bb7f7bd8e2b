"""Field rules shared by every form that takes company or contact details (SPEC §1, issue 2)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.no import orgnr

from backend.i18n import N_
from backend.services.errors import ValidationFailed

PASSWORD_MIN = 10
PASSWORD_MAX = 128
# Every id column is a 32-bit serial: a larger (or non-positive) id names no row.
MAX_ID = 2**31 - 1
# Only ASCII digits are numbers here: str.isdigit also takes "²" (which int() rejects) and
# "١٢" (which int() reads as 12).
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}", re.ASCII)
# Control characters (C0, DEL, C1) other than tab and newline; a CR only as part of the CRLF
# that browsers send for line breaks in a textarea.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
CONTROL_CHARACTER_MESSAGE = N_("Teksten inneholder kontrolltegn som ikke er tillatt.")


class FieldError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def whole_number(value: str, lo: int, hi: int) -> int | None:
    """A whole number from lo to hi written in ASCII digits (a leading minus allowed), else
    None: the caller knows which message its field shows."""
    value = value.strip()
    if not WHOLE_NUMBER.fullmatch(value):
        return None
    number = int(value)
    return number if lo <= number <= hi else None


def record_id(value: str) -> int | None:
    """An id typed or chosen in a form or a query string, or None when it can name no row."""
    return whole_number(value, 1, MAX_ID)


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTER.search(value) is not None


def text(value: str, *, max_length: int, required: bool = True) -> str:
    value = " ".join(value.split())
    if required and not value:
        raise FieldError(N_("Feltet må fylles ut."))
    if len(value) > max_length:
        raise FieldError(N_("Teksten er for lang."))
    return value


def org_number(value: str) -> str:
    """Norwegian organisation number (mod 11), returned compact: "974 760 673" → "974760673"."""
    if not value.strip():
        raise FieldError(N_("Skriv inn organisasjonsnummeret."))
    try:
        return orgnr.validate(re.sub(r"[\s.-]", "", value))
    except StdnumError:
        raise FieldError(
            N_("Ugyldig organisasjonsnummer (9 siffer, f.eks. 974 760 673).")
        ) from None


def format_org_number(compact: str) -> str:
    return orgnr.format(compact)


def email(value: str) -> str:
    if not value.strip():
        raise FieldError(N_("Skriv inn e-postadressen."))
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise FieldError(N_("Ugyldig e-postadresse.")) from None
    # One address, one account, whatever the case it is typed in.
    return result.normalized.lower()


def phone(value: str) -> str:
    """A Norwegian phone number, stored as E.164 (+4722334455)."""
    if not value.strip():
        raise FieldError(N_("Skriv inn telefonnummeret."))
    try:
        number = phonenumbers.parse(value, "NO")
    except phonenumbers.NumberParseException:
        raise FieldError(N_("Ugyldig telefonnummer.")) from None
    if not phonenumbers.is_valid_number_for_region(number, "NO"):
        raise FieldError(N_("Skriv inn et gyldig norsk telefonnummer (8 siffer)."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    if not e164:
        return ""
    number = phonenumbers.parse(e164, "NO")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def postal_code(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"[0-9]{4}", value):
        raise FieldError(N_("Postnummeret skal være fire siffer."))
    return value


def password(value: str) -> str:
    if len(value) < PASSWORD_MIN:
        raise FieldError(N_("Passordet må ha minst 10 tegn."))
    if len(value) > PASSWORD_MAX:
        raise FieldError(N_("Passordet kan ha høyst 128 tegn."))
    return value


def password_confirmation(value: str, password: str) -> str:
    if value != password:
        raise FieldError(N_("Passordene er ikke like."))
    return value


def clean(form: Mapping[str, str], rules: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
    """Apply one rule per field and collect every message, so the form can show them all."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, rule in rules.items():
        try:
            cleaned[field] = rule(form.get(field, ""))
        except FieldError as error:
            errors[field] = error.message
    if errors:
        raise ValidationFailed(errors)
    return cleaned
