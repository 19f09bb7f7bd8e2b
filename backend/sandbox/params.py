"""Stripe's form encoding and parameter checking, learnt from the official SDK's typed params.

Stripe's v1 API takes `application/x-www-form-urlencoded` bodies (and query strings) where
nesting is spelt with brackets: `line_items[0][price_data][currency]=nok`, `metadata[k]=v`,
`expand[]=x` or `expand[0]=x`. `parse_form` turns the pairs into nested dicts (lists are
still dicts with numeric keys at that point: only the schema knows whether `a[0]` is a list
element or a metadata key named "0").

The accepted names are never written by hand: `schema_for(stripe.params.checkout.
SessionCreateParams)` walks the TypedDict's annotations (as text, since `typing.get_type_hints`
cannot resolve them) and resolves the class names they mention in the params module, so the
sandbox accepts exactly what the installed SDK can send. `validate` then rejects unknown names
(`parameter_unknown`), reports missing required ones (`parameter_missing`), turns numeric-keyed
dicts into lists where the type is a list, and coerces integers and booleans.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

# --- errors -----------------------------------------------------------------------------------


class ParamError(Exception):
    """A parameter Stripe would refuse; rendered as an `invalid_request_error` (400)."""

    def __init__(self, message: str, *, param: str | None, code: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def unknown(param: str) -> ParamError:
    return ParamError(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def missing(param: str) -> ParamError:
    return ParamError(f"Missing required param: {param}.", param=param, code="parameter_missing")


# --- form encoding ----------------------------------------------------------------------------

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SUBKEY = re.compile(r"\[([^\[\]]*)\]")


def parse_form(text: str) -> dict[str, Any]:
    """`a[b][0][c]=v&expand[]=x` → {"a": {"b": {"0": {"c": "v"}}}, "expand": {"0": "x"}}."""
    root: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        match = _NAME.match(name)
        if match is None:
            raise unknown(name)
        keys = [match.group(1), *_SUBKEY.findall(match.group(2))]
        node = root
        for depth, key in enumerate(keys):
            if key == "":
                key = str(len(node))
            last = depth == len(keys) - 1
            if last:
                if isinstance(node.get(key), dict):
                    raise ParamError(
                        f"Invalid value for {name}: it is also used as a hash.",
                        param=name,
                        code=None,
                    )
                node[key] = value
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise ParamError(
                        f"Invalid hash: {_bracketed(keys[: depth + 1])}",
                        param=_bracketed(keys[: depth + 1]),
                        code=None,
                    )
                node = child
    return root


def _bracketed(keys: list[str]) -> str:
    return keys[0] + "".join(f"[{key}]" for key in keys[1:])


def _child(path: str, key: str) -> str:
    return f"{path}[{key}]" if path else key


# --- types, read from the SDK's annotations ----------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    kind: str  # "str", "int", "bool", "float", "decimal", "any"


@dataclass(frozen=True)
class Literal_:
    values: tuple[str, ...]


@dataclass(frozen=True)
class ListOf:
    item: Type


@dataclass(frozen=True)
class MapOf:
    value: Type


@dataclass(frozen=True)
class Object:
    """A TypedDict; its fields are resolved lazily (and cached) by `fields_of`."""

    cls: type


@dataclass(frozen=True)
class Union_:
    options: tuple[Type, ...]


Type = Scalar | Literal_ | ListOf | MapOf | Object | Union_

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^']*'|\"[^\"]*\")|(?P<name>[A-Za-z_][\w.]*)|(?P<sym>[\[\],|]))"
)
_SCALARS = {
    "str": "str",
    "int": "int",
    "bool": "bool",
    "float": "float",
    "Decimal": "decimal",
    "Any": "any",
    "None": "none",
    "NoneType": "none",
}
_UNWRAP = {"NotRequired", "Required", "Optional", "ReadOnly", "Annotated"}
_LISTS = {"List", "list", "Sequence", "Tuple", "tuple"}
_MAPS = {"Dict", "dict", "Mapping", "UntypedStripeObject"}


def annotation_text(annotation: Any) -> str:
    """The annotation as Python source: ForwardRef('X') → X, typing.List → List."""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    text = repr(annotation)
    text = re.sub(r"ForwardRef\((['\"])(.*?)\1(?:, module=[^)]*)?\)", r"\2", text)
    return re.sub(r"<class '([\w.]+)'>", r"\1", text)


class _Parser:
    def __init__(self, text: str, namespace: dict[str, Any]) -> None:
        self.tokens = [
            (m.lastgroup, m.group(m.lastgroup))
            for m in _TOKEN.finditer(text)
            if m.lastgroup is not None
        ]
        self.pos = 0
        self.namespace = namespace

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str | None, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def union(self) -> Type:
        options = [self.term()]
        while self.peek() == "|":
            self.take()
            options.append(self.term())
        return options[0] if len(options) == 1 else Union_(tuple(options))

    def arguments(self) -> list[Any]:
        args: list[Any] = []
        if self.peek() != "[":
            return args
        self.take()
        while self.peek() != "]":
            kind, value = self.tokens[self.pos]
            if kind == "str":
                self.take()
                args.append(value[1:-1])
            else:
                args.append(self.union())
            if self.peek() == ",":
                self.take()
        self.take()
        return args

    def term(self) -> Type:
        kind, value = self.take()
        if kind == "str":  # a quoted forward reference inside an annotation
            return _Parser(value[1:-1], self.namespace).union()
        name = value.rsplit(".", 1)[-1]
        args = self.arguments()
        if name in _UNWRAP:
            return args[0]
        if name == "Union":
            return Union_(tuple(args))
        if name == "Literal":
            return Literal_(tuple(str(arg) for arg in args))
        if name in _LISTS:
            return ListOf(args[0] if args else Scalar("any"))
        if name in _MAPS:
            return MapOf(args[-1] if args else Scalar("any"))
        if name in _SCALARS:
            return Scalar(_SCALARS[name])
        target = self.namespace.get(name)
        if _is_typeddict(target):
            return Object(target)
        return Scalar("any")


def _is_typeddict(obj: Any) -> bool:
    return (
        isinstance(obj, type)
        and issubclass(obj, dict)
        and hasattr(obj, "__required_keys__")
        and hasattr(obj, "__optional_keys__")
    )


@dataclass(frozen=True)
class Fields:
    types: dict[str, Type]
    required: frozenset[str]


def _request_option_names(cls: type) -> set[str]:
    """Keys inherited from the SDK's RequestOptions (api_key, idempotency_key, …): options of
    the client call, never sent as parameters."""
    names: set[str] = set()
    for base in getattr(cls, "__orig_bases__", ()):
        if _is_typeddict(base):
            names |= set(base.__annotations__)
    return names


@cache
def fields_of(cls: type) -> Fields:
    namespace = vars(sys.modules[cls.__module__])
    skip = _request_option_names(cls)
    types = {
        name: _Parser(annotation_text(annotation), namespace).union()
        for name, annotation in cls.__annotations__.items()
        if name not in skip
    }
    return Fields(types=types, required=frozenset(cls.__required_keys__) - skip)


def accepted_names(cls: type) -> set[str]:
    return set(fields_of(cls).types)


# --- validation --------------------------------------------------------------------------------


def validate(cls: type, params: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict:
    """Check `params` against the SDK TypedDict `cls`; returns them with lists and numbers
    converted. `required` adds names the sandbox needs although the SDK marks them optional."""
    result = _object(Object(cls), params, "")
    for name in required:
        if name not in result:
            raise missing(name)
    return result


def validate_custom(
    fields: dict[str, Type], params: dict[str, Any], *, required: tuple[str, ...] = ()
) -> dict:
    """For the sandbox's own endpoints (test helpers), which have no SDK params type."""
    result: dict[str, Any] = {}
    for key, value in params.items():
        if key not in fields:
            raise unknown(key)
        result[key] = _value(fields[key], value, key)
    for name in required:
        if name not in result:
            raise missing(name)
    return result


def _object(kind: Object, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParamError(f"Invalid object: {path}", param=path, code=None)
    fields = fields_of(kind.cls)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key not in fields.types:
            raise unknown(_child(path, key))
        result[key] = _value(fields.types[key], item, _child(path, key))
    for key in sorted(fields.required):
        if key not in result:
            raise missing(_child(path, key))
    return result


def _options(kind: Type) -> tuple[Type, ...]:
    if isinstance(kind, Union_):
        return tuple(option for inner in kind.options for option in _options(inner))
    return (kind,)


def _value(kind: Type, value: Any, path: str) -> Any:
    options = _options(kind)
    if isinstance(value, dict):
        for option in options:
            if isinstance(option, Object):
                return _object(option, value, path)
        for option in options:
            if isinstance(option, ListOf):
                return _list(option, value, path)
        for option in options:
            if isinstance(option, MapOf):
                return {
                    key: _value(option.value, item, _child(path, key))
                    for key, item in value.items()
                }
        if any(isinstance(option, Scalar) and option.kind == "any" for option in options):
            return value
        first = next(iter(value))
        raise unknown(_child(path, first))
    return _scalar(options, value, path)


def _list(kind: ListOf, value: dict[str, Any], path: str) -> list[Any]:
    indexed: list[tuple[int, Any]] = []
    for key, item in value.items():
        if not key.isdigit():
            raise unknown(_child(path, key))
        indexed.append((int(key), item))
    indexed.sort(key=lambda pair: pair[0])
    return [_value(kind.item, item, _child(path, str(index))) for index, item in indexed]


def _scalar(options: tuple[Type, ...], value: str, path: str) -> Any:
    kinds = {option.kind for option in options if isinstance(option, Scalar)}
    literals = {v for option in options if isinstance(option, Literal_) for v in option.values}
    if value == "" and ("" in literals or not kinds):
        return ""  # an empty value unsets hashes and lists in Stripe's encoding
    if "str" in kinds or "any" in kinds:
        return value
    if value in literals:
        return value
    if "int" in kinds:
        try:
            return int(value)
        except ValueError:
            raise ParamError(
                f"Invalid integer: {value}", param=path, code="parameter_invalid_integer"
            ) from None
    if "bool" in kinds:
        if value in ("true", "false"):
            return value == "true"
        raise ParamError(f"Invalid boolean: {value}", param=path, code=None)
    if kinds & {"float", "decimal"}:
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ParamError(f"Invalid decimal: {value}", param=path, code=None) from None
    if literals:
        raise ParamError(
            f"Invalid {path}: must be one of {', '.join(sorted(literals))}",
            param=path,
            code=None,
        )
    if any(isinstance(option, ListOf) for option in options):
        raise ParamError(f"Invalid array: {path}", param=path, code=None)
    if any(isinstance(option, (Object, MapOf)) for option in options):
        raise ParamError(f"Invalid hash: {path}", param=path, code=None)
    return value
