"""Judging PromQL probes: every series an instant query returns, against the probe's bound.

``evaluate`` is pure (a query result in, a verdict out); ``run_probe`` queries and judges
at a given time; ``client_for`` builds the client a probe names. Errors name the probe.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from brownout.experiment.probes import PrometheusRef, PromProbe
from brownout.observe.promql import BasicAuth, PrometheusClient, QueryFailed, QueryResult
from faults.errors import Unauthorized, Unreachable

Outcome = Literal["held", "violated", "no_data", "skipped"]
_SHOWN = 3  # series named in a message; the verdict keeps them all


@dataclass(frozen=True)
class SeriesVerdict:
    """One returned series judged: ``series`` is PromQL's notation (``name{label="v"}``)."""

    series: str
    labels: tuple[tuple[str, str], ...]
    value: float
    ok: bool

    def describe(self, bound: str) -> str:
        value = "NaN" if math.isnan(self.value) else f"{self.value:g}"
        return f"{self.series} = {value} {'within' if self.ok else 'breaks'} {bound}"


@dataclass(frozen=True)
class ProbeVerdict:
    probe: str
    query: str
    bound: str          # "<= 0.25", several terms joined with "and"
    at: float           # the evaluation time (Unix seconds)
    outcome: Outcome
    series: tuple[SeriesVerdict, ...]

    @property
    def ok(self) -> bool:
        """Skipped (no data, ``on_empty: skip``) is no verdict, so not a failure."""
        return self.outcome in ("held", "skipped")

    @property
    def failed(self) -> tuple[SeriesVerdict, ...]:
        return tuple(s for s in self.series if not s.ok)

    @property
    def message(self) -> str:
        if self.outcome == "no_data":
            return f"no data: {self.query} returned no series"
        if self.outcome == "skipped":
            return f"no data (skipped, on_empty: skip): {self.query} returned no series"
        shown = self.failed if self.outcome == "violated" else self.series
        text = "; ".join(s.describe(self.bound) for s in shown[:_SHOWN])
        more = len(shown) - _SHOWN
        return text + (f"; and {more} more" if more > 0 else "")


def evaluate(probe: PromProbe, result: QueryResult, at: float) -> ProbeVerdict:
    """Every series against every term of the bound; no series is "no data" (fail or skip)."""
    judged = tuple(
        SeriesVerdict(series=s.series, labels=s.labels, value=s.value,
                      ok=all(term.holds(s.value) for term in probe.bound))
        for s in result.samples
    )
    if not judged:
        outcome: Outcome = "skipped" if probe.on_empty == "skip" else "no_data"
    else:
        outcome = "held" if all(s.ok for s in judged) else "violated"
    return ProbeVerdict(probe=probe.name, query=probe.query, bound=probe.bound_text, at=at,
                        outcome=outcome, series=judged)


def client_for(ref: PrometheusRef) -> PrometheusClient:
    auth = ref.auth
    basic = None if auth is None or auth.basic is None else BasicAuth(auth.basic.username, auth.basic.password)
    return PrometheusClient(ref.prometheus, bearer_token=None if auth is None else auth.bearer_token,
                            basic=basic, timeout_s=ref.timeout)


async def run_probe(probe: PromProbe, client: PrometheusClient, at: float | None = None) -> ProbeVerdict:
    """Query at ``at`` (now when None) and judge; errors say which probe failed and why."""
    at = time.time() if at is None else at
    try:
        result = await client.query(probe.query, at=at)
    except QueryFailed as exc:
        raise QueryFailed(f"probe {probe.name!r}: {exc} (query: {probe.query})") from None
    except Unauthorized as exc:
        raise Unauthorized(f"probe {probe.name!r}: {exc}") from None
    except Unreachable as exc:
        raise Unreachable(f"probe {probe.name!r}: {exc}") from None
    return evaluate(probe, result, at)
