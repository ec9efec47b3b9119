"""Admin API bodies (and config ``faults:`` entries), parsed at the edge into frozen models.

The same models validate the bodies and describe them in the admin API's OpenAPI document
(``proxy/openapi.py``), so the document cannot drift from what is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from faults.errors import InvalidInput
from faults.units import INT_MAX, INT_MIN, MAX_DEPTH, MAX_SECONDS, check_numbers, parse_duration
from faults.validation import validate

DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(us|µs|ms|s|m|h)?\s*$", "maxLength": 64},
    ],
    "description": "a duration: 250ms, 30s, 5m, 1h, or seconds",
}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA)]
FAULT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"  # what POST /faults accepts, and every id it makes


class FaultRequest(BaseModel):
    """The body of ``POST /faults`` (and an entry of the config's ``faults:``)."""

    # strict: JSON types as documented (no "5" for a seed); durations still read strings
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    type: str = Field(max_length=64, description="a fault kind, or a toxic type on a tcp route")
    route: str = Field(max_length=64, description="the route's name")
    params: dict[str, Any] = Field(default={}, description="the kind's parameters (`brownout faults catalogue`)")
    match: dict[str, Any] | None = Field(
        default=None, description="which requests: methods, path, headers, body, probability, first_n, "
                                  "every_nth, max_injections")
    ttl: Seconds | None = Field(default=None, description="the lease; default and maximum are the proxy's fault_ttl")
    id: str | None = Field(default=None, pattern=FAULT_ID)
    seed: int | None = Field(default=None, ge=INT_MIN, le=INT_MAX, description="seeds the fault's own rng")


class FaultPatch(BaseModel):
    """The body of ``PATCH /faults/{id}``: renew the lease, change parameters, or both."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    ttl: Seconds | None = None
    params: dict[str, Any] | None = None


def parse_body(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object")
    check_numbers(body)
    return validate(model, body)


def _refuse_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not valid JSON: numbers must be finite")


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, strictly: UTF-8, no ``NaN``/``Infinity`` tokens, numbers finite
    and in range, nesting at most ``MAX_DEPTH`` deep. Anything else is an ``InvalidInput``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidInput(f"malformed JSON body: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # also integers past Python's digit limit
        raise InvalidInput(f"malformed JSON body: {exc}") from None
    check_numbers(value)
    return value
