"""Retry amplification and Retry-After violations: SLIs judged on the proxies' own counters.

A dependency in trouble answers 429 or 503; clients that retry at once multiply the load on
it just when it can take least. The proxy in front of the dependency counts every request
that arrives on its route, whoever answered it (``brownout_requests_total``: the upstream, or
the fault itself with its 429), and every request that came back before the ``Retry-After``
a fault gave it (``brownout_retry_after_violations_total``). Per window, and per phase:

* ``retry_amplification[ROUTE]`` = arrivals on the route, summed over every proxy that serves
  it, ÷ requests the load generator sent (``WindowStats.sent``). 1.0 is one call per client
  request; bound it with ``steady_state.sla.max_retry_amplification: {ROUTE: 1.5}``. No data
  when nothing was sent.
* ``retry_after_violations[ROUTE]`` = early comebacks on the route; bound it per window with
  ``steady_state.sla.max_retry_after_violations: {ROUTE: 0}`` (a phase's total is judged
  against the bound times its windows).

The proxy counts a request when it ends and the load generator when it was due, so a window
may count the few requests in flight at its boundary on either side; the phase figure has no
such edge. A window in which a proxy that serves the route could not be read, or restarted,
has no data for the route (its arrivals would be short). A route that no proxy serves is
no data that fails: most likely a misspelt name.

``RetryJudge`` is a ``Judge`` on the one ``SidecarReader`` (``brownout.observe.sidecars``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from brownout.experiment.steady import Sla
from brownout.observe.sidecars import REQUESTS, Judge, SidecarDelta, SidecarWindow
from brownout.steady.observations import Measurement
from brownout.windows import WindowStats

AMPLIFICATION = "retry_amplification"
VIOLATIONS = "retry_after_violations"
VIOLATIONS_COUNTER = "brownout_retry_after_violations_total"
_HTTP_ROUTE_COUNTERS = (REQUESTS, VIOLATIONS_COUNTER)  # a sidecar serves a route when it counts these for it


def sli_name(sli: str, route: str) -> str:
    """``retry_amplification[gpu-worker]``: each route is its own SLI, check and JUnit case."""
    return f"{sli}[{route}]"


def parse_sli(name: str) -> tuple[str, str] | None:
    """``retry_amplification[gpu-worker]`` → (``retry_amplification``, ``gpu-worker``); None for another SLI."""
    for sli in (AMPLIFICATION, VIOLATIONS):
        if name.startswith(sli + "[") and name.endswith("]"):
            return sli, name[len(sli) + 1:-1]
    return None


def retry_judges(sla: Sla) -> list[Judge]:
    """The judges the SLA asks for (none without per-route retry bounds)."""
    judge = RetryJudge.from_sla(sla)
    return [] if judge is None else [judge]


def _routes(delta: SidecarDelta) -> set[str]:
    return {dict(labels).get("route", "") for (name, labels) in (delta.counters or {})
            if name in _HTTP_ROUTE_COUNTERS} - {""}


@dataclass
class RetryJudge:
    """Judges ``max_retry_amplification`` and ``max_retry_after_violations`` every window and phase.

    It remembers which routes each sidecar served when it could be read, so a sidecar that
    cannot be read spoils only the routes it serves (one never read spoils every route).
    """

    amplification: Mapping[str, float]
    violations: Mapping[str, float]
    _served: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def from_sla(cls, sla: Sla) -> RetryJudge | None:
        if not sla.route_bounds:
            return None
        return cls(dict(sla.max_retry_amplification), dict(sla.max_retry_after_violations))

    @property
    def routes(self) -> list[str]:
        return list(dict.fromkeys([*self.amplification, *self.violations]))

    def __call__(self, window: SidecarWindow, stats: WindowStats) -> list[Measurement]:
        for delta in window.sidecars:
            if delta.counters is not None:
                self._served.setdefault(delta.sidecar, set()).update(_routes(delta))
        out: list[Measurement] = []
        for route in self.routes:
            arrivals, violations, missing = self._count(window, route)
            if route in self.amplification:
                out.append(self._amplification(route, arrivals, stats.sent, missing))
            if route in self.violations:
                out.append(self._violations(route, violations, window.windows, missing))
        return out

    def _count(self, window: SidecarWindow, route: str) -> tuple[float, float, str | None]:
        """Arrivals and violations on ``route`` over every sidecar serving it, or why there are none."""
        serving = [d for d in window.sidecars if route in self._served.get(d.sidecar, {route})]
        spoiled = [d for d in serving if d.counters is None or d.missing or d.restarted]
        if spoiled:
            reasons = "; ".join(f"{d.sidecar}: {d.note or 'no data in %d window(s)' % d.missing}" for d in spoiled)
            return 0.0, 0.0, f"not every proxy serving {route!r} was read: {reasons}"
        if not serving:
            known = sorted({r for rs in self._served.values() for r in rs})
            return 0.0, 0.0, f"no proxy serves route {route!r} (routes: {', '.join(known) or 'none'})"
        arrivals = sum(d.total(REQUESTS, route=route) or 0.0 for d in serving)
        violations = sum(d.total(VIOLATIONS_COUNTER, route=route) or 0.0 for d in serving)
        return arrivals, violations, None

    def _unserved(self, note: str | None) -> bool:
        return note is not None and note.startswith("no proxy serves")

    def _amplification(self, route: str, arrivals: float, sent: int, missing: str | None) -> Measurement:
        bound = self.amplification[route]
        name = sli_name(AMPLIFICATION, route)
        labels = (("route", route),)
        if missing is not None:
            return Measurement(name, None, bound, "<=", labels=labels, note=missing,
                               on_empty="fail" if self._unserved(missing) else "skip")
        if not sent:
            return Measurement(name, None, bound, "<=", labels=labels,
                               note=f"no data: nothing sent ({round(arrivals)} arrivals)")
        return Measurement(name, arrivals / sent, bound, "<=", labels=labels,
                           note=f"{round(arrivals)} arrivals / {sent} sent")

    def _violations(self, route: str, count: float, windows: int, missing: str | None) -> Measurement:
        bound = self.violations[route] * windows  # per window; a phase pools its windows
        name = sli_name(VIOLATIONS, route)
        labels = (("route", route),)
        if missing is not None:
            return Measurement(name, None, bound, "<=", labels=labels, note=missing,
                               on_empty="fail" if self._unserved(missing) else "skip")
        note = f"over {windows} windows, {self.violations[route]:g} per window" if windows > 1 else None
        return Measurement(name, count, bound, "<=", labels=labels, note=note)
