"""Reading posted forms and query strings into their typed forms (validation.convert)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile
from litestar.openapi.spec import Operation

from backend.i18n import N_
from backend.services import attachments, validation
from backend.services.errors import ValidationFailed
from backend.services.validation import S

UNKNOWN_FIELD = N_("Skjemaet inneholdt ukjente felt. Last siden på nytt og prøv igjen.")
# Where the posted values wait for backend/web/errors.py, should the form come back (422).
FORM_VALUES = "form_values"


def _collect(items: Any, form_type: type[msgspec.Struct]) -> tuple[dict[str, Any], bool]:
    """Name → text (or list of texts for a list field); whether a field was unknown.

    A text field sent twice (a choice of packs plus an "other amount" box) keeps the last
    non-empty value."""
    fields = validation.form_fields(form_type)
    lists = {spec.encode_name for spec in fields if spec.is_list}
    known = {spec.encode_name for spec in fields}
    values: dict[str, Any] = {name: [] for name in lists}
    unknown = False
    for key, value in items:
        if key == "_csrf_token":
            continue
        if key not in known or not isinstance(value, str):
            unknown = True
            continue
        if key in lists:
            values[key].append(value)
        elif value.strip() or key not in values:
            values[key] = value
    return values, unknown


async def read_values(request: Request, form_type: type[msgspec.Struct]) -> dict[str, Any]:
    """What was posted for the fields of `form_type`, as text, for a service that converts it
    itself (validation.convert) because its own checks (the catalog, the database) belong
    with the fields' messages. A field the form does not have refuses the whole form."""
    values, unknown = _collect((await request.form()).multi_items(), form_type)
    request.state[FORM_VALUES] = values
    if unknown:
        raise ValidationFailed({"form": UNKNOWN_FIELD}, values)
    return values


async def read_values_and_files(
    request: Request, form_type: type[msgspec.Struct]
) -> tuple[dict[str, Any], list[attachments.IncomingFile]]:
    """`read_values` for a multipart form that also takes files (`attachments.FIELD`, an
    `<input type=file multiple>`): the values, and the files as plain data. A file input left
    empty sends a part with no file name, which is no file."""
    items: list[tuple[str, Any]] = []
    files: list[attachments.IncomingFile] = []
    for key, value in (await request.form()).multi_items():
        if key != attachments.FIELD:
            items.append((key, value))
        elif isinstance(value, UploadFile):
            data = await value.read()
            await value.close()
            files.append(attachments.IncomingFile(value.filename, value.content_type, data))
        elif value != "":
            items.append((key, value))  # text where a file belongs: an unknown field
    values, unknown = _collect(items, form_type)
    request.state[FORM_VALUES] = values
    if unknown:
        raise ValidationFailed({"form": UNKNOWN_FIELD}, values)
    return values, files


async def read_form(request: Request, form_type: type[S]) -> S:
    """The posted form as `form_type`, or ValidationFailed with every field's message (and the
    input, control characters removed, so the form comes back as it was typed)."""
    return validation.convert(await read_values(request, form_type), form_type)


def read_query(request: Request, query_type: type[S]) -> S:
    """The query string as `query_type`: unknown parameters are ignored and a value that does
    not convert takes the field's default, as a shared link with an odd filter still shows."""
    values, _ = _collect(request.query_params.multi_items(), query_type)
    return validation.convert(values, query_type, lenient=True)


def read_query_checked(request: Request, query_type: type[S]) -> tuple[S, dict[str, str]]:
    """`read_query`, and the messages for the values that did not convert (a field left
    empty is no filter), for a page that tells what it ignored."""
    values, _ = _collect(request.query_params.multi_items(), query_type)
    values = {name: value for name, value in values.items() if value not in ("", [])}
    try:
        return validation.convert(values, query_type), {}
    except ValidationFailed as failed:
        return validation.convert(values, query_type, lenient=True), failed.errors


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if ref := schema.get("$ref"):
            return _inline(defs[ref.rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def form_operation(form_type: type[msgspec.Struct], *, files: bool = False) -> type[Operation]:
    """The OpenAPI operation of a route that reads `form_type` (url-encoded) by hand: its
    fields and bounds in the schema, for fuzzers and readers, as a `data: Form` route has.
    With `files`: multipart too, with the files (`attachments.FIELD`) beside the fields."""
    generated = msgspec.json.schema(form_type)
    schema = _inline(generated, generated.get("$defs", {}))
    schema.pop("$defs", None)
    content = {"application/x-www-form-urlencoded": {"schema": schema}}
    if files:
        # The same fields, or with files beside them (which only multipart carries).
        with_files = {**schema, "properties": {**schema.get("properties", {})}}
        with_files["properties"][attachments.FIELD] = {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "maxItems": attachments.MAX_FILES,
        }
        content["multipart/form-data"] = {"schema": with_files}

    class FormOperation(Operation):
        def to_schema(self) -> dict[str, Any]:
            described = super().to_schema()
            described["requestBody"] = {
                "required": True,
                "content": content,
            }
            return described

    FormOperation.__name__ = f"{form_type.__name__}Operation"
    return FormOperation


UNKNOWN_PARAMETER = N_("Ukjent parameter.")
REPEATED_PARAMETER = N_("Parameteren er oppgitt mer enn én gang.")


def read_api_query(request: Request, query_type: type[S]) -> S:
    """The query string as `query_type`, strictly, for the API: a parameter it does not have,
    one given twice, or a value that does not convert is ValidationFailed (400 under /api/)
    with each parameter's message. An empty value is a parameter not given."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    fields = validation.form_fields(query_type)
    known = {spec.encode_name for spec in fields}
    for key, value in request.query_params.multi_items():
        if key not in known:
            errors[key] = UNKNOWN_PARAMETER
        elif key in values:
            errors[key] = REPEATED_PARAMETER
        elif value.strip():
            values[key] = value
    try:
        return validation.convert(values, query_type, errors=errors)
    except ValidationFailed as failed:
        # Named as the query string names them ("from", not the field's "start").
        names = {spec.name: spec.encode_name for spec in fields}
        raise ValidationFailed(
            {names.get(name, name): message for name, message in failed.errors.items()}
        ) from None


def query_operation(query_type: type[msgspec.Struct]) -> type[Operation]:
    """The OpenAPI operation of a route that reads `query_type` from the query string by hand
    (read_api_query): each field a query parameter, with its type and bounds."""
    generated = msgspec.json.schema(query_type)
    schema = _inline(generated, generated.get("$defs", {}))
    required = set(schema.get("required", ()))
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": field_schema.pop("description", ""),
            "schema": field_schema,
        }
        for name, field_schema in schema["properties"].items()
    ]

    class QueryOperation(Operation):
        def to_schema(self) -> dict[str, Any]:
            described = super().to_schema()
            described["parameters"] = [*described.get("parameters", []), *parameters]
            return described

    QueryOperation.__name__ = f"{query_type.__name__}Operation"
    return QueryOperation
