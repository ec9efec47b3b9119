"""Verdicts (one SLI of one window against its bound) and SLA checks (one SLI of one phase).

A verdict names the window, the SLI, the bound, the value and the faults active then. A
check gathers a phase's verdicts for one SLI; it fails when any of them failed (in the
recovery phase, only windows that end after the recovery deadline count). Checks become JUnit test
cases; the outcome of a run follows from them.

No data (``brownout.windows``: a window with nothing sent has no latency or error rate):
an SLA bound on a traffic SLI whose value is None gives a verdict with ``value`` None and
``no_data`` set. It does not fail the window, and it does not count as held either: checks
count such windows apart, a check with data in none of its windows says so (JUnit: skipped).
Quality SLIs (agreement, PSI, precision, ...) and stream SLIs without data give no verdict:
they have their own minimum sample sizes, and most windows have no probe result of each.
Safeguards (``abort_when``) only ever fire on data.

Verdicts also come from outside the load generator (``brownout.steady.observations``: PromQL
probes, sidecar counters): those name a ``subject`` (a series' labels, a sidecar) besides the
SLI, may judge several subjects per window, and may fail for no data (a probe's
``on_empty: fail``). A check counts windows, not verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from brownout.exit_codes import Outcome
from brownout.experiment.model import AbortWhen
from brownout.experiment.steady import Predictions, Sla, StreamSla
from brownout.steady.invariants import MODEL_VERSION, NON_FINITE, SCHEMA, SHAPE
from brownout.steady.quality import QualityStats
from brownout.steady.streams import StreamStats
from brownout.windows import WindowStats

Comparison = Literal["<=", ">=", "<", ">", "=="]

BASELINE, METHOD, RECOVERY = "baseline", "method", "recovery"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


@dataclass(frozen=True)
class Verdict:
    phase: str
    window_index: int | None
    window_start: float
    window_end: float
    sli: str
    bound: float
    value: float | None
    ok: bool
    comparison: Comparison = "<="
    active_faults: tuple[str, ...] = ()
    subject: str = ""          # what was measured besides the SLI: a series' labels, a sidecar
    note: str | None = None    # why there is no data, or what else the value needs said

    @property
    def no_data(self) -> bool:
        return self.value is None

    @property
    def name(self) -> str:
        """The SLI and its subject: ``fallback-rate {job="model-api"}``."""
        return f"{self.sli} {self.subject}" if self.subject else self.sli

    @property
    def window(self) -> str:
        span = f"{self.window_start:g}s–{self.window_end:g}s"
        return f"window {self.window_index} ({span})" if self.window_index is not None else f"{self.phase} ({span})"

    def message(self) -> str:
        """``window 7 (35s–40s, method): latency_p99_ms = 412.3, bound <= 250: violated; faults active: …``"""
        state = "no data" if self.no_data else "ok" if self.ok else "violated"
        faults = ", ".join(self.active_faults) if self.active_faults else "none"
        where = self.window.replace(")", f", {self.phase})", 1) if self.window_index is not None else self.window
        note = f" ({self.note})" if self.note else ""
        return (f"{where}: {self.name} = {_fmt(self.value)}, bound {self.comparison} {self.bound:g}: {state}{note}; "
                f"faults active: {faults}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase, "window": self.window_index, "start": self.window_start,
            "end": self.window_end, "sli": self.sli, "subject": self.subject, "comparison": self.comparison,
            "bound": self.bound, "value": self.value, "ok": self.ok, "no_data": self.no_data,
            "active_faults": list(self.active_faults), "note": self.note, "message": self.message(),
        }


@dataclass(frozen=True)
class Sli:
    """An SLI: its name, the key of its bound, the direction, and where its value comes from."""

    name: str
    bound_key: str
    comparison: Comparison
    value: Callable[[WindowStats, QualityStats], float | None]


SLA_SLIS: tuple[Sli, ...] = (
    Sli("latency_p50_ms", "latency_p50_ms", "<=", lambda w, q: w.p50_ms),
    Sli("latency_p95_ms", "latency_p95_ms", "<=", lambda w, q: w.p95_ms),
    Sli("latency_p99_ms", "latency_p99_ms", "<=", lambda w, q: w.p99_ms),
    Sli("error_rate", "error_rate", "<=", lambda w, q: w.error_rate),
    Sli("throughput_rps", "min_throughput", ">=", lambda w, q: w.throughput_rps),
    Sli("dropped_rate", "max_dropped_rate", "<=", lambda w, q: w.dropped_rate),
)
PREDICTION_SLIS: tuple[Sli, ...] = (
    Sli("golden_agreement", "min_agreement", ">=", lambda w, q: q.agreement),
    Sli("score_psi", "max_psi", "<=", lambda w, q: q.psi),
    Sli("precision", "min_precision", ">=", lambda w, q: q.precision),
    Sli("recall", "min_recall", ">=", lambda w, q: q.recall),
    Sli("brier", "max_brier", "<=", lambda w, q: q.brier),
)
# Every response must be valid (all invariants hold) but for ``max_invalid_rate`` of them.
VALID_RESPONSES = Sli("valid_responses", "", ">=", lambda w, q: q.valid_rate)
# Each invariant on its own, so a verdict names the one broken (bound: max_invalid_rate).
INVARIANT_SLIS: tuple[Sli, ...] = (
    Sli("schema_violation_rate", "", "<=", lambda w, q: q.violation_rate(SCHEMA)),
    Sli("non_finite_rate", "", "<=", lambda w, q: q.violation_rate(NON_FINITE)),
    Sli("shape_mismatch_rate", "", "<=", lambda w, q: q.violation_rate(SHAPE)),
)
MODEL_VERSION_SLI = Sli("model_version_skew_rate", "", "<=", lambda w, q: q.violation_rate(MODEL_VERSION))
ECHO_SLI = Sli("echo_mismatch_rate", "", "<=", lambda w, q: q.echo_mismatch_rate)
# Replayed answers that agree with the recorded ones (bound: predictions.replay.min_agreement).
REPLAY_SLI = Sli("replay_agreement", "", ">=", lambda w, q: q.replay_agreement)
ABORT_SLIS: tuple[Sli, ...] = (
    Sli("error_rate", "error_rate", "<=", lambda w, q: w.error_rate),
    Sli("latency_p99_ms", "latency_p99_ms", "<=", lambda w, q: w.p99_ms),
)


def _judge(sli: Sli, bound: float, stats: WindowStats, quality: QualityStats, phase: str,
           faults: Sequence[str], window: int | None, *, no_data_verdict: bool = False) -> Verdict | None:
    value = sli.value(stats, quality)
    if value is None:
        if not no_data_verdict:
            return None
        return Verdict(phase, window, stats.start, stats.end, sli.name, bound, None, True, sli.comparison,
                       tuple(faults))
    ok = value <= bound + 1e-12 if sli.comparison == "<=" else value >= bound - 1e-12
    return Verdict(phase, window, stats.start, stats.end, sli.name, bound, value, ok, sli.comparison, tuple(faults))


def evaluate_sla(stats: WindowStats, quality: QualityStats, sla: Sla, predictions: Predictions | None, *,
                 phase: str, active_faults: Sequence[str] = (), window: int | None = None) -> list[Verdict]:
    """Verdicts for every bound the experiment sets that has data in this window."""
    out: list[Verdict] = []
    for sli in SLA_SLIS:
        bound = getattr(sla, sli.bound_key)
        if bound is not None and (v := _judge(sli, bound, stats, quality, phase, active_faults, window,
                                              no_data_verdict=True)):
            out.append(v)
    if predictions is not None:
        bound = predictions.max_invalid_rate
        if v := _judge(VALID_RESPONSES, 1.0 - bound, stats, quality, phase, active_faults, window):
            out.append(v)
        invariants = INVARIANT_SLIS + ((MODEL_VERSION_SLI,) if predictions.model_versions is not None else ()) \
            + ((ECHO_SLI,) if predictions.echo is not None else ())
        for sli in invariants:
            if v := _judge(sli, bound, stats, quality, phase, active_faults, window):
                out.append(v)
        for sli in PREDICTION_SLIS:
            bound = getattr(predictions, sli.bound_key)
            if bound is not None and (v := _judge(sli, bound, stats, quality, phase, active_faults, window)):
                out.append(v)
        replay = predictions.replay
        if replay is not None and (v := _judge(REPLAY_SLI, replay.min_agreement, stats, quality, phase,
                                               active_faults, window)):
            out.append(v)
    return out


STREAM_SLIS: tuple[tuple[str, str, Comparison, Callable[[StreamStats], float | None]], ...] = (
    ("ttft_p50_ms", "ttft_p50_ms", "<=", lambda s: s.ttft_p50_ms),
    ("ttft_p99_ms", "ttft_p99_ms", "<=", lambda s: s.ttft_p99_ms),
    ("itl_p99_ms", "itl_p99_ms", "<=", lambda s: s.itl_p99_ms),
    ("e2el_p99_ms", "e2el_p99_ms", "<=", lambda s: s.e2el_p99_ms),
    ("goodput", "min_goodput", ">=", lambda s: s.goodput),
    ("stream_integrity_failures", "max_integrity_failures", "<=", lambda s: float(s.integrity_failures)),
)


def evaluate_streams(stats: WindowStats, streams: StreamStats, sla: StreamSla, *, phase: str,
                     active_faults: Sequence[str] = (), window: int | None = None) -> list[Verdict]:
    """Verdicts on the window's probed streams (none when no stream was probed in it)."""
    if not streams.streams:
        return []
    out: list[Verdict] = []
    for name, key, comparison, value_of in STREAM_SLIS:
        bound = getattr(sla, key)
        sli = Sli(name, key, comparison, lambda w, q, f=value_of: f(streams))  # type: ignore[misc]
        if bound is not None and (v := _judge(sli, float(bound), stats, QualityStats(), phase, active_faults, window)):
            out.append(v)
    return out


def evaluate_abort(stats: WindowStats, abort_when: AbortWhen | None, *, phase: str,
                   active_faults: Sequence[str] = (), window: int | None = None) -> list[Verdict]:
    """The safeguards this window breaches (empty: carry on)."""
    if abort_when is None:
        return []
    empty = QualityStats()
    out = []
    for sli in ABORT_SLIS:
        bound = getattr(abort_when, sli.bound_key)
        if bound is not None and (v := _judge(sli, bound, stats, empty, phase, active_faults, window)) and not v.ok:
            out.append(v)
    return out


@dataclass(frozen=True)
class RecoveryResult:
    """Did the SLA hold again within ``within`` of the faults ending, and how soon."""

    faults_ended_at: float
    within: float
    recovered: bool
    time_to_recover_s: float | None  # None: never recovered in the windows seen

    @property
    def deadline(self) -> float:
        return self.faults_ended_at + self.within

    def as_dict(self) -> dict[str, Any]:
        return {"faults_ended_at": self.faults_ended_at, "within": self.within, "deadline": self.deadline,
                "recovered": self.recovered, "time_to_recover_s": self.time_to_recover_s}


@dataclass(frozen=True)
class Check:
    """One SLA check: an SLI over a phase. Fails when a counted window failed."""

    phase: str
    sli: str
    comparison: Comparison
    bound: float
    windows: int
    failures: tuple[Verdict, ...]  # every failed verdict (a window may have several subjects)
    no_data: int = 0  # windows without data for this SLI (neither failed nor held, or failed for it)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def judged(self) -> bool:
        """False when no window had data: the check says nothing either way."""
        return self.no_data < self.windows

    @property
    def name(self) -> str:
        return f"{self.phase}: {self.sli} {self.comparison} {self.bound:g}"

    def message(self) -> str:
        missing = f"; no data in {self.no_data}" if self.no_data else ""
        if not self.judged:
            return f"{self.name}: no data in any of {self.windows} window(s)"
        if self.ok:
            return f"{self.name}: held in {self.windows - self.no_data} window(s){missing}"
        worst = self.failures[0]
        return (f"{self.name}: violated in {self.failed_windows} of {self.windows} window(s){missing}; "
                f"first: {worst.message()}")

    @property
    def failed_windows(self) -> int:
        return len({v.window_index for v in self.failures})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "sli": self.sli, "comparison": self.comparison,
                "bound": self.bound, "windows": self.windows, "no_data": self.no_data, "ok": self.ok,
                "failures": [f.as_dict() for f in self.failures], "message": self.message()}


def build_checks(verdicts: Sequence[Verdict], recovery: RecoveryResult | None = None) -> list[Check]:
    """Group window verdicts into checks (one per phase, SLI and bound), in phase order then first appearance."""
    groups: dict[tuple[str, str, str, float], list[Verdict]] = {}
    for v in verdicts:
        if v.window_index is not None:
            groups.setdefault((v.phase, v.sli, v.comparison, v.bound), []).append(v)
    order = {BASELINE: 0, METHOD: 1, RECOVERY: 2}
    checks = []
    for (phase, sli, comparison, bound), vs in sorted(groups.items(), key=lambda kv: order.get(kv[0][0], 3)):
        counted = vs
        if phase == RECOVERY and recovery is not None:
            counted = [v for v in vs if v.window_end > recovery.deadline + 1e-9]
        failures = tuple(v for v in counted if not v.ok)
        by_window: dict[int | None, list[Verdict]] = {}
        for v in vs:
            by_window.setdefault(v.window_index, []).append(v)
        no_data = sum(all(v.no_data for v in w) for w in by_window.values())
        checks.append(Check(phase, sli, comparison, bound, len(by_window), failures, no_data))  # type: ignore[arg-type]
    return checks


def decide_outcome(checks: Sequence[Check], *, aborted: bool, recovery: RecoveryResult | None = None) -> Outcome:
    """Aborted → ABORTED; a failed baseline → BASELINE_FAILED; any failure → DEVIATED; else HELD."""
    if aborted:
        return Outcome.ABORTED
    if any(not c.ok for c in checks if c.phase == BASELINE):
        return Outcome.BASELINE_FAILED
    if any(not c.ok for c in checks) or (recovery is not None and not recovery.recovered):
        return Outcome.DEVIATED
    return Outcome.HELD
