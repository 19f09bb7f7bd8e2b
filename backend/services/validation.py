"""Field rules of every form, and the one place that turns what was posted into a typed form."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

import msgspec
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

S = TypeVar("S", bound=msgspec.Struct)


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


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTER.search(value) is not None


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


# --- typed forms ---------------------------------------------------------------------------
# Every form and query string is a msgspec.Struct whose fields carry their bounds in
# `msgspec.Meta` (so the OpenAPI schema shows them) and, in `Meta.extra`, what msgspec cannot
# say: "message" (the field's Norwegian message for any value out of bounds), "required" (its
# message when left empty), "clean" (text → text before the bounds: whitespace) and "check"
# (value → value after them: org number, e-mail, phone). `convert` is the one place that reads
# them; the rules that hold for every field live there too: ASCII digits only, no control
# characters, ids no larger than MAX_ID.

REQUIRED = N_("Feltet må fylles ut.")
TOO_LONG = N_("Teksten er for lang.")
INVALID = N_("Ugyldig verdi.")


def collapse(value: str) -> str:
    """One line of text: runs of whitespace (line breaks included) become one space."""
    return " ".join(value.split())


def strip(value: str) -> str:
    return value.strip()


def field(
    base: Any,
    *,
    message: str | None = None,
    required: str | None = None,
    clean: Callable[[str], str] | None = None,
    check: Callable[[Any], Any] | None = None,
    **bounds: Any,
) -> Any:
    """A form field's type: `base` within `bounds` (msgspec.Meta's ge, le, max_length, …)."""
    extra = {"message": message, "required": required, "clean": clean, "check": check}
    return Annotated[base, msgspec.Meta(**bounds, extra={k: v for k, v in extra.items() if v})]


def line(max_length: int, *, optional: bool = False, **kwargs: Any) -> Any:
    """One line of text, whitespace collapsed; required unless `optional`."""
    return field(
        str, clean=collapse, min_length=0 if optional else 1, max_length=max_length, **kwargs
    )


def body(max_length: int, **kwargs: Any) -> Any:
    """A textarea: line breaks kept, required."""
    return field(str, clean=strip, min_length=1, max_length=max_length, **kwargs)


RecordId = field(int, ge=1, le=MAX_ID)
Page = field(int, ge=1, le=MAX_ID)


def unwrap(annotation: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(the type under Annotated, Meta.extra merged, msgspec's bounds merged)."""
    extra: dict[str, Any] = {}
    bounds: dict[str, Any] = {}
    base = annotation
    if get_origin(annotation) is Annotated:
        base, *metas = get_args(annotation)
        for meta in metas:
            if isinstance(meta, msgspec.Meta):
                extra.update(meta.extra or {})
                bounds.update(
                    {
                        k: getattr(meta, k)
                        for k in ("min_length", "max_length")
                        if getattr(meta, k) is not None
                    }
                )
    return base, extra, bounds


@dataclass(frozen=True)
class FormField:
    name: str
    encode_name: str
    annotation: Any
    has_default: bool
    is_list: bool


@functools.cache
def form_fields(form_type: type[msgspec.Struct]) -> tuple[FormField, ...]:
    """The fields of a form, read once per form type: resolving the annotations (postponed,
    as text) costs more than the rest of a page's form handling."""
    hints = get_type_hints(form_type, include_extras=True)
    return tuple(
        FormField(
            name=spec.name,
            encode_name=spec.encode_name,
            annotation=hints[spec.name],
            has_default=spec.default is not msgspec.NODEFAULT
            or spec.default_factory is not msgspec.NODEFAULT,
            is_list=get_origin(unwrap(hints[spec.name])[0]) is list,
        )
        for spec in msgspec.structs.fields(form_type)
    )


def convert_field(raw: Any, annotation: Any) -> Any:
    """One field's value from what was posted (text, or a list of texts), or FieldError with
    the field's message."""
    base, extra, bounds = unwrap(annotation)
    message = extra.get("message")
    for text in raw if isinstance(raw, list) else [raw]:
        if isinstance(text, str) and has_control_characters(text):
            raise FieldError(CONTROL_CHARACTER_MESSAGE)
    if isinstance(raw, str):
        if clean := extra.get("clean"):
            raw = clean(raw)
        if base is int:
            number = whole_number(raw, -(10**12), 10**12)
            if number is None:
                raise FieldError(message or INVALID)
            raw = number
        elif base is str and not raw and bounds.get("min_length"):
            raise FieldError(extra.get("required") or message or REQUIRED)
    try:
        value = msgspec.convert(raw, annotation)
    except msgspec.ValidationError:
        if base is str and isinstance(raw, str) and len(raw) > bounds.get("max_length", len(raw)):
            raise FieldError(message or TOO_LONG) from None
        raise FieldError(message or INVALID) from None
    if check := extra.get("check"):
        value = check(value)
    return value


def _without_control(value: Any) -> Any:
    return CONTROL_CHARACTER.sub("", value) if isinstance(value, str) else value


def convert(
    values: Mapping[str, Any],
    form_type: type[S],
    *,
    lenient: bool = False,
    errors: Mapping[str, str] | None = None,
) -> S:
    """The form `form_type` from posted `values` (name → text or list of texts), every field's
    message collected at once: ValidationFailed(errors, values) otherwise. `lenient` (query
    strings): a field that does not convert takes its default instead, as a link with an odd
    filter still shows the page. `errors`: what the caller found already (a product not in the
    catalog), shown with the rest; a field's own message comes first."""
    cleaned: dict[str, Any] = {}
    found = dict(errors or {})
    messages: dict[str, str] = {}
    for spec in form_fields(form_type):
        raw = values.get(spec.encode_name)
        if raw is None:
            if spec.has_default:
                continue
            raw = [] if spec.is_list else ""
        try:
            cleaned[spec.name] = convert_field(raw, spec.annotation)
        except FieldError as error:
            if lenient and spec.has_default:
                continue
            messages[spec.name] = error.message
    # Rules between fields (a form's classmethod `check_together(values)`), with the others.
    if check_together := getattr(form_type, "check_together", None):
        for name, message in check_together(values).items():
            messages.setdefault(name, message)
    for name, message in found.items():
        messages.setdefault(name, message)
    if messages:
        kept = {
            name: [_without_control(v) for v in value]
            if isinstance(value, list)
            else _without_control(value)
            for name, value in values.items()
        }
        raise ValidationFailed(messages, kept)
    return form_type(**cleaned)


# Contact details, as every form that takes them has them.
ORG_NUMBER_INVALID = N_("Ugyldig organisasjonsnummer (9 siffer, f.eks. 974 760 673).")
POSTAL_CODE_INVALID = N_("Postnummeret skal være fire siffer.")
EMAIL_INVALID = N_("Ugyldig e-postadresse.")
PHONE_INVALID = N_("Ugyldig telefonnummer.")

OrgNumber = field(str, max_length=40, message=ORG_NUMBER_INVALID, check=org_number)
PostalCode = field(str, max_length=4, message=POSTAL_CODE_INVALID, check=postal_code)
Email = field(str, max_length=320, message=EMAIL_INVALID, check=email)
Phone = field(str, max_length=40, message=PHONE_INVALID, check=phone)
Password = field(
    str,
    max_length=PASSWORD_MAX,
    message=N_("Passordet kan ha høyst 128 tegn."),
    check=password,
)
# What the second of two password boxes is checked against (`passwords_match`).
PasswordConfirmation = field(str, max_length=1024)
PASSWORDS_DIFFER = N_("Passordene er ikke like.")


def passwords_match(values: Mapping[str, Any], first: str, second: str) -> dict[str, str]:
    """A new password typed twice, in fields `first` and `second` (registration, a password
    change): the second's message when they differ. For a form's `check_together`."""
    if values.get(second) != values.get(first):
        return {second: PASSWORDS_DIFFER}
    return {}
