"""Admin API bodies (and config ``faults:`` entries), parsed at the edge into frozen models."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from faults.errors import InvalidInput
from faults.units import parse_duration
from faults.validation import validate

Seconds = Annotated[float, BeforeValidator(parse_duration)]
_FAULT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class FaultRequest(BaseModel):
    """The body of ``POST /faults`` (and an entry of the config's ``faults:``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    route: str
    params: dict[str, Any] = {}
    match: dict[str, Any] | None = None
    ttl: Seconds | None = None
    id: str | None = Field(default=None, pattern=_FAULT_ID.pattern)
    seed: int | None = None


class FaultPatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ttl: Seconds | None = None
    params: dict[str, Any] | None = None


def parse_body(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object")
    return validate(model, body)
