"""From a pydantic ``ValidationError`` to the user's message and dotted field: one wording everywhere.

Used for fault parameters and ``match`` (``faults.catalogue``), admin API bodies
(``proxy.fault_requests``), the proxy's config file (``proxy.yamlsource``) and experiment
files (``brownout.experiment.loader``), so the same mistake reads the same wherever it is
made:

* a key the model does not have: ``unknown key``, or ``unknown key (did you mean 'delay_ms'?)``
  when a known key is close (parameters, body fields and file keys are all keys of a mapping);
* a required key left out: ``required key is missing``;
* a number out of range: ``must be >= 0, got -5``;
* a validator's ``ValueError``: its own text; a validator that writes ``"name: message"``
  names the key, which joins the field (``params.delay_ms``);
* anything else: pydantic's message, first letter in lower case.

Fields are dotted paths with list indexes in brackets: ``method[1].params.delay_ms``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from faults.errors import InvalidInput, InvalidInputs

PathPart = str | int
T = TypeVar("T")

UNKNOWN_KEY = "unknown key"
MISSING_KEY = "required key is missing"
_UNKNOWN_TYPES = ("extra_forbidden", "unexpected_keyword_argument")
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}


@dataclass(frozen=True)
class FieldError:
    """One problem: where (pydantic's ``loc``, and the key a validator named), what, and pydantic's type."""

    loc: tuple[PathPart, ...]
    message: str
    type: str
    named: str | None = None  # a validator wrote "named: message"

    @property
    def parts(self) -> tuple[PathPart, ...]:
        return (*self.loc, self.named) if self.named is not None else self.loc


def dotted(parts: Sequence[PathPart], prefix: str = "") -> str:
    """``('method', 1, 'params')`` → ``method[1].params`` (after ``prefix`` when given)."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def suggest(key: str, known: Collection[str]) -> str:
    """``unknown key``, with the closest known key when one is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return f"{UNKNOWN_KEY} (did you mean {close[0]!r}?)" if close and close[0] != key else UNKNOWN_KEY


def message_of(err: Any) -> str:
    """The wording above for one pydantic error (``exc.errors()`` item), before a named key is lifted."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _UNKNOWN_TYPES:
        return UNKNOWN_KEY
    if kind == "missing" or kind == "missing_argument":
        return MISSING_KEY
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool):
            return f"must be {op} {bound:g}, got {err.get('input')!r}"
        return f"must be {op} {bound}"
    message = str(err["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "assertion_error":
        return message.removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:]


def field_errors(exc: ValidationError, known: Collection[str] = ()) -> list[FieldError]:
    """Every error of ``exc`` in the common wording; unknown keys get a suggestion from ``known``."""
    out = []
    for err in exc.errors():
        loc: tuple[PathPart, ...] = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        message, named = message_of(err), None
        if err["type"] == "value_error":
            name, sep, rest = message.partition(": ")
            if sep and name.isidentifier():
                message, named = rest, name
        if message == UNKNOWN_KEY and loc and isinstance(loc[-1], str):
            message = suggest(loc[-1], known)
        out.append(FieldError(loc, message, err["type"], named))
    return out


@cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


@cache
def known_keys(cls: type) -> tuple[str, ...]:
    """Every key the model (or pydantic dataclass) and its nested models take, from its JSON schema."""
    try:
        model = isinstance(cls, type) and issubclass(cls, BaseModel)
        schema = cls.model_json_schema() if model else _adapter(cls).json_schema()  # type: ignore[attr-defined]
    except Exception:  # a type without a JSON schema only loses its suggestions
        return ()
    objects = [schema, *schema.get("$defs", {}).values()]
    return tuple(sorted({key for obj in objects for key in obj.get("properties", {})}))


def invalid_inputs(exc: ValidationError, prefix: str = "", known: Collection[str] = ()) -> list[InvalidInput]:
    return [InvalidInput(e.message, dotted(e.parts, prefix) or None) for e in field_errors(exc, known)]


def validate(cls: type[T], data: Any, prefix: str = "", *, context: Any = None) -> T:
    """``data`` validated into ``cls`` (a pydantic model or dataclass), or InvalidInputs naming each field."""
    try:
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls.model_validate(data, context=context)  # type: ignore[return-value]
        return _adapter(cls).validate_python(data, context=context)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise InvalidInputs(invalid_inputs(exc, prefix, known_keys(cls))) from None
