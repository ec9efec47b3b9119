"""Admin API bodies (and config ``faults:`` entries), parsed at the edge into frozen models.

The same models validate the bodies and describe them in the admin API's OpenAPI document
(``proxy/openapi.py``), so the document cannot drift from what is accepted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
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

# A wall-clock instant: epoch seconds, or RFC 3339 with an explicit offset (never a local time).
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339, re.ASCII)
MAX_EPOCH = 1e11  # year 5138: past it a number is a typo (milliseconds?), not a time
WALL_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_EPOCH},
        {"type": "string", "pattern": RFC3339, "maxLength": 40},
    ],
    "description": "a wall-clock time: seconds since the Unix epoch, or RFC 3339 (2025-01-31T12:00:00.250Z)",
}


def parse_wall(value: object) -> float:
    """Epoch seconds from a number or an RFC 3339 string with an offset; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) and not 0 <= value <= MAX_EPOCH:  # compared as int: no overflow
            raise ValueError(f"must be epoch seconds between 0 and {MAX_EPOCH:.0f}")
        seconds = float(value)
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_EPOCH:
            raise ValueError(f"must be epoch seconds between 0 and {MAX_EPOCH:.0f}")
        return seconds
    if isinstance(value, str) and len(value) <= 40 and _RFC3339.match(value):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise ValueError(f"not a valid time: {exc}") from None
    raise ValueError("not a wall-clock time: give epoch seconds or RFC 3339 with an offset "
                     "(2025-01-31T12:00:00Z)")


WallTime = Annotated[float, BeforeValidator(parse_wall), WithJsonSchema(WALL_SCHEMA)]


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
    start_at: WallTime | None = Field(
        default=None, description="stage the fault: it comes into force at this time on the proxy's clock "
                                  "(at most an hour ahead; a time already past starts it at once)")
    end_at: WallTime | None = Field(default=None, description="the fault stops being in force at this time "
                                                              "(it stays listed, ended, until removed or expired)")


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
