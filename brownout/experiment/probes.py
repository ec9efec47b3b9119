"""PromQL probes of the steady-state hypothesis (``steady_state.probes``), as typed objects.

A probe asks the team's own Prometheus a question every window and judges every series
the answer holds against a bound::

    probes:
      - name: fallback-rate
        prometheus: ${PROMETHEUS_URL:-http://127.0.0.1:9090}
        query: sum(rate(demo_model_api_fallbacks_total[30s])) / sum(rate(demo_model_api_predictions_total[30s]))
        bound: {"<=": 0.05}              # also "<", ">=", ">", "=="; several terms must all hold
        phases: [baseline, method, recovery]
        on_empty: fail                   # or skip: no series is then no verdict
        auth: {bearer_token: ${PROM_TOKEN}}   # or {basic: {username, password}}
        timeout: 5s
        delay: 15s                       # when to ask after a window ends; default: one scrape
                                         # interval of that Prometheus (read at preflight)

This module imports nothing from ``model``, so ``model`` can import it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from faults.units import parse_duration

Phase = Literal["baseline", "method", "recovery"]
PHASES: tuple[Phase, ...] = ("baseline", "method", "recovery")
Operator = Literal["<=", "<", ">=", ">", "=="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq,
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class FrozenModel(BaseModel):
    """Frozen, unknown keys refused: the experiment model's conventions."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, validate_default=True)


@dataclass(frozen=True)
class BoundTerm:
    """One comparison of a bound: ``value <op> limit``."""

    op: Operator
    limit: float

    def holds(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.limit)  # NaN holds nothing

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"


def _terms(value: Any) -> tuple[BoundTerm, ...]:
    if isinstance(value, tuple) and all(isinstance(t, BoundTerm) for t in value):
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError('must map an operator to a number, e.g. {"<=": 0.25}')
    terms = []
    for op, limit in value.items():
        if op not in _COMPARE:
            raise ValueError(f"unknown operator {op!r}; use one of {', '.join(_COMPARE)}")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit):
            raise ValueError(f"{op}: must be a finite number, got {limit!r}")
        terms.append(BoundTerm(op, float(limit)))
    return tuple(terms)


_BOUND_SCHEMA = {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "properties": {op: {"type": "number"} for op in _COMPARE},
    "description": 'every returned series must satisfy each term, e.g. {"<=": 0.25}',
}
Bound = Annotated[tuple[BoundTerm, ...], BeforeValidator(_terms), WithJsonSchema(_BOUND_SCHEMA)]


def _timeout(value: Any) -> float:
    seconds = parse_duration(value)  # not scaled by --time-scale: it is Prometheus' time, not the run's
    if seconds <= 0:
        raise ValueError("must be longer than 0")
    return seconds


Timeout = Annotated[float, BeforeValidator(_timeout),
                    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
                                    "description": "a duration: 250ms, 5s, or seconds"})]


def http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


class BasicCredentials(FrozenModel):
    username: str = Field(min_length=1)
    password: str = Field(repr=False)


class PrometheusAuth(FrozenModel):
    """Exactly one of a bearer token or basic credentials; never printed or reported."""

    bearer_token: str | None = Field(default=None, repr=False, min_length=1)
    basic: BasicCredentials | None = None

    @model_validator(mode="after")
    def _one(self) -> PrometheusAuth:
        if (self.bearer_token is None) == (self.basic is None):
            raise ValueError("give exactly one of 'bearer_token' or 'basic'")
        return self


class PrometheusRef(FrozenModel):
    """Where a Prometheus' HTTP API is and how to reach it."""

    prometheus: str
    auth: PrometheusAuth | None = None
    timeout: Timeout = 5.0

    @field_validator("prometheus")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


class PromProbe(PrometheusRef):
    name: str
    query: str = Field(min_length=1)
    bound: Bound
    phases: tuple[Phase, ...] = PHASES
    on_empty: Literal["fail", "skip"] = "fail"
    delay: Timeout | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a PromQL expression")
        return value.strip()

    @field_validator("phases")
    @classmethod
    def _phases(cls, value: tuple[Phase, ...]) -> tuple[Phase, ...]:
        if not value:
            raise ValueError(f"name at least one of {', '.join(PHASES)}")
        if len(set(value)) != len(value):
            raise ValueError("each phase at most once")
        return value

    def applies_to(self, phase: str) -> bool:
        return phase in self.phases

    @property
    def bound_text(self) -> str:
        return " and ".join(str(t) for t in self.bound)
