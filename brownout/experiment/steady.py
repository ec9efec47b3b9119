"""The steady-state hypothesis of an experiment file (``steady_state``), as typed, frozen objects.

The SLA's per-window bounds, prediction quality (golden set, validity, drift, replay
agreement), LLM stream SLOs, PromQL probes, cost and the fleet's per-sidecar SLIs. An absent
bound is not checked.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from brownout.experiment.base import FrozenModel as _Model
from brownout.experiment.base import http_url as _http_url
from brownout.experiment.cost import CostSpec
from brownout.experiment.probes import PromProbe
from brownout.experiment.proxies import SidecarSlis
from brownout.experiment.replay import ReplayAgreement
from brownout.experiment.types import Fraction, InputFile, JsonPathText, NonNegative, PositiveDuration
from proxy.config import ROUTE_NAME

FiniteBound = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_ROUTE_NAME = re.compile(ROUTE_NAME)


def _route_bounds(description: str) -> Any:
    return Field(default_factory=dict, description=description,
                 json_schema_extra={"propertyNames": {"pattern": ROUTE_NAME}})


# Sla bounds per proxy route (judged on the proxies' counters; no meaning for a bare load run).
ROUTE_BOUNDS = ("max_retry_amplification", "max_retry_after_violations")


class Sla(_Model):
    """Per-window bounds; an absent bound is not checked.

    The per-route bounds are judged on the proxies' own counters (``brownout.steady.retries``):
    ``max_retry_amplification``: arrivals on the route (every request it parsed, retries and
    the fault's own 429s included) per request the load generator sent; 1.0 is one call per
    client request, the floor without retries. ``max_retry_after_violations``: requests per
    window that came back before the ``Retry-After`` a fault gave them (0: none may).
    """

    latency_p50_ms: NonNegative | None = None
    latency_p95_ms: NonNegative | None = None
    latency_p99_ms: NonNegative | None = None
    error_rate: Fraction | None = None
    min_throughput: NonNegative | None = None
    max_dropped_rate: Fraction | None = None
    max_retry_amplification: dict[str, FiniteBound] = _route_bounds(
        "per proxy route: the most arrivals on it per request the load generator sent (1.0: no retries)")
    max_retry_after_violations: dict[str, FiniteBound] = _route_bounds(
        "per proxy route: the most requests per window that come back before their Retry-After")

    @field_validator("max_retry_amplification", "max_retry_after_violations", mode="before")
    @classmethod
    def _route_names(cls, value: Any) -> Any:
        """Keys first, so a bad bound's error can name its route."""
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str) or not _ROUTE_NAME.match(key):
                    raise ValueError(f"{key!r} is not a route name (letters, digits, '_', '.', '-'; "
                                     "1 to 64 characters, starting with a letter or digit)")
        return value

    @property
    def route_bounds(self) -> bool:
        """Whether a bound needs the proxies' counters."""
        return bool(self.max_retry_amplification or self.max_retry_after_violations)


class Echo(_Model):
    """The response must echo the request's id or nonce (checked on golden probes)."""

    request: JsonPathText   # where the id is in the probe's request body
    response: JsonPathText  # where the response must repeat it


class Predictions(_Model):
    """Prediction quality: golden set, response validity, drift, and labelled metrics."""

    golden: InputFile | None = None
    score: JsonPathText | None = None
    tolerance: NonNegative = 1e-3
    min_agreement: Fraction | None = None
    max_psi: NonNegative | None = None
    probe_interval: PositiveDuration = 1.0
    min_precision: Fraction | None = None
    min_recall: Fraction | None = None
    max_brier: Fraction | None = None
    required_paths: tuple[JsonPathText, ...] = Field(default=(), alias="schema")
    # Per-response invariants: the share of responses allowed to break one (default none).
    max_invalid_rate: Fraction = 0.0
    model_versions: tuple[str, ...] | None = None  # allowed values (fnmatch patterns: fraud-hgb-*)
    model_version_path: JsonPathText = "$.model_version"
    echo: Echo | None = None
    replay: ReplayAgreement | None = None  # needs load.payloads to be a recording (with answers)

    @model_validator(mode="after")
    def _needs(self) -> Predictions:
        if self.echo is not None and self.golden is None:
            raise ValueError("echo needs a golden set (its probes are the requests whose id is checked)")
        if self.golden is not None and self.score is None:
            raise ValueError("golden needs score (the JSON path of the value to compare)")
        if self.max_psi is not None and self.score is None:
            raise ValueError("max_psi needs score (the JSON path of the score)")
        for name in ("min_agreement", "min_precision", "min_recall", "max_brier"):
            if getattr(self, name) is not None and self.golden is None:
                raise ValueError(f"{name} needs a golden set")
        return self


class StreamSla(_Model):
    """Per-window bounds on streams (vLLM/DistServe definitions); an absent bound is not checked."""

    ttft_p50_ms: NonNegative | None = None
    ttft_p99_ms: NonNegative | None = None
    itl_p99_ms: NonNegative | None = None
    e2el_p99_ms: NonNegative | None = None
    min_goodput: Fraction | None = None  # share of streams intact and within the TTFT and ITL bounds
    max_integrity_failures: int = Field(default=0, ge=0)  # streams per window without [DONE], finish_reason, ...


def _default_stream_body() -> dict[str, Any]:
    return {"model": "brownout-demo", "messages": [{"role": "user", "content": "Why do fraud models drift?"}],
            "max_tokens": 32, "temperature": 0, "seed": 1, "stream": True}


class Streams(_Model):
    """An OpenAI-compatible streaming request probed every ``interval`` through the proxy."""

    url: str | None = None  # default: target.url
    body: dict[str, Any] = Field(default_factory=_default_stream_body)
    headers: dict[str, str] = Field(default_factory=dict)
    interval: PositiveDuration = 1.0
    timeout: PositiveDuration | None = None  # default: load.timeout
    expect: str | None = None  # a regular expression the streamed text must contain
    sla: StreamSla = Field(default_factory=StreamSla)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("body")
    @classmethod
    def _streaming(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("stream", True) is not True:
            raise ValueError("a stream probe sends stream: true (leave it out or set it to true)")
        return {**value, "stream": True}

    @field_validator("expect")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class SteadyState(_Model):
    window: PositiveDuration = 5.0
    baseline: PositiveDuration | None = None  # steady state before any fault; default 2 windows
    sla: Sla = Field(default_factory=Sla)
    predictions: Predictions | None = None
    streams: Streams | None = None
    probes: tuple[PromProbe, ...] = ()  # PromQL probes, judged every window (brownout.experiment.probes)
    cost: CostSpec | None = None  # CPU-seconds (and joules) per 1,000 successful predictions
    sidecars: SidecarSlis | None = None  # the sidecars' own counts judged, per sidecar or for the fleet

    @field_validator("probes")
    @classmethod
    def _unique_probes(cls, value: tuple[PromProbe, ...]) -> tuple[PromProbe, ...]:
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"probe names must be unique (each is an SLI): {', '.join(twice)}")
        return value
