"""Fleet SLIs: the sidecars' own request counts, judged per window for the fleet summed or for
each sidecar, and the per-sidecar breakdown the reports show.

The counts come from the one reader of every sidecar's ``/metrics``
(``brownout.observe.sidecars.SidecarReader``): this module only registers a judge on it
(``steady_state.sidecars``) and reads the per-phase details it leaves in the journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brownout.experiment.proxies import SidecarSlis
from brownout.observe.sidecars import Judge, SidecarWindow
from brownout.steady.observations import Measurement
from brownout.windows import WindowStats

ERROR_RATE = "sidecar_error_rate"  # 5xx answers / requests the sidecar served
THROUGHPUT = "sidecar_throughput_rps"  # requests the sidecar served per second
FLEET = "fleet"  # the subject of a fleet-wide verdict (a sidecar's is its admin URL)


def _errors(statuses: Mapping[str, int]) -> int:
    return sum(n for status, n in statuses.items() if status.startswith("5"))


def sidecar_judge(spec: SidecarSlis) -> Judge:
    """The judge of ``steady_state.sidecars``: measurements per window, per sidecar or fleet-wide."""

    def judge(window: SidecarWindow, stats: WindowStats) -> Sequence[Measurement]:
        subjects = [(FLEET, None)] if spec.scope == "fleet" else [(s.sidecar, s.sidecar) for s in window.sidecars]
        out = []
        for subject, sidecar in subjects:
            total = window.requests(spec.route, sidecar=sidecar)
            unread = "its /metrics could not be read" if total is None else None
            if spec.sla.error_rate is not None:
                errors = _errors(window.by_status(spec.route, sidecar))
                out.append(Measurement(ERROR_RATE, errors / total if total else None, spec.sla.error_rate, "<=",
                                       subject=subject, note=unread or (None if total else "no requests")))
            if spec.sla.min_throughput is not None:
                rate = None if total is None or stats.duration <= 0 else total / stats.duration
                # a sidecar that cannot be read serves nobody as far as the run can tell: that fails
                out.append(Measurement(THROUGHPUT, rate, spec.sla.min_throughput, ">=", subject=subject,
                                       on_empty="fail", note=unread))
        return out

    return judge


@dataclass(frozen=True)
class SidecarRow:
    """One sidecar in one phase, from its own counts."""

    phase: str
    sidecar: str
    requests: int | None  # None: no data
    errors: int
    windows_without_data: int
    restarted: bool

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def breakdown(phases: Sequence[Mapping[str, Any]], route: str | None = None) -> list[SidecarRow]:
    """Per phase, per sidecar: requests and 5xx, from the journal's ``phases[].sidecars``."""
    rows = []
    for phase in phases:
        for sidecar, seen in (phase.get("sidecars") or {}).items():
            routes = seen.get("routes") or {}
            picked = [r for name, r in routes.items() if route is None or name == route]
            requests = sum(int(r.get("requests") or 0) for r in picked) if seen.get("ok") else None
            errors = sum(_errors(r.get("statuses") or {}) for r in picked)
            rows.append(SidecarRow(str(phase.get("phase", "")), str(sidecar), requests, errors,
                                   int(seen.get("windows_without_data") or 0), bool(seen.get("restarted"))))
    return rows


def breakdown_lines(rows: Sequence[SidecarRow]) -> list[str]:
    """The summary's block: a line per sidecar and phase (only for more than one sidecar)."""
    if len({r.sidecar for r in rows}) < 2:
        return []
    width = max(len(r.sidecar) for r in rows)
    lines = ["  sidecars (their own counts):", f"    {'phase':<9} {'sidecar':<{width}}  requests   5xx%"]
    for r in rows:
        requests = "no data" if r.requests is None else str(r.requests)
        rate = "-" if r.error_rate is None else f"{r.error_rate * 100:.2f}"
        extra = (f"  ({r.windows_without_data} window(s) without data)" if r.windows_without_data else "") + \
            ("  (restarted)" if r.restarted else "")
        lines.append(f"    {r.phase:<9} {r.sidecar:<{width}}  {requests:>8} {rate:>6}{extra}")
    return lines
