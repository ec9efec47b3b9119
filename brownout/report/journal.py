"""The run journal: everything a run did and found, as one JSON document (``journal.json``).

Schema (``schema_version`` = ``JOURNAL_SCHEMA_VERSION``); times in ``t``/``start``/``end``
fields are seconds since the run started, wall-clock times are ISO 8601 UTC:

```
schema_version   int
brownout_version str
status           {outcome: held|deviated|aborted|baseline_failed|invalid|could_not_run|interrupted,
                  exit_code: 0|1|2|3|4|130, reason: str}
experiment       {source: path|null, title, seed, definition: the experiment as loaded
                  (durations in seconds, paths resolved, proxy tokens shown as "***")}
started_at, ended_at   ISO 8601 UTC;  duration_s  float
trace_id, trace_url    the run's trace (32 hex digits) and its link (tracing.link_template), or null
timeline         [{t, event, detail{}}]                  phase changes, injections, aborts, ...
injections       [{id, step, kind: fault|action, name, target, proxy, planned_at, planned_until,
                   started_at, ended_at, params{}, removed: bool, error,
                   trace_id, span_id, trace_url,   (its span in the run's trace, or null)
                   arming: {group, targets, sidecars[], start_at, end_at, lead_ms, activated{sidecar: time},
                            ended{sidecar: time}, arm_skew_ms, disarm_skew_ms, failed{sidecar: why}} | null}]
fleet            {groups: [{index, label, how: admin|list|discover|toxiproxy, source, sidecars[],
                  rtt_ms{}}], lead_s, clock_note} | null      the proxies as resolved at preflight
windows          [{index, phase, start, end, active_faults[], ok,
                   stats{index, start, end, sent, errors, dropped, statuses{}, bytes_received,
                         in_flight_max, error_rate, dropped_rate, throughput_rps, p50_ms,
                         p90_ms, p95_ms, p99_ms, p999_ms, max_ms, mean_ms}   (brownout.windows),
                   quality{responses, invalid, valid_rate, problems{}, scores, probes,
                           agreement, psi, precision, recall, brier,
                           violations{schema|non_finite|shape|model_version: n},
                           echo_checked, echo_mismatches,
                           replay{compared, agreed, agreement, disagreements{kind: n},
                                  examples["line N: kind: detail"]}},
                   streams{streams, integrity_failures, problems{}, ttft_p50_ms, ttft_p99_ms,
                           itl_p99_ms, e2el_p99_ms, goodput, tokens} | null,
                   verdicts[verdict], abort[verdict],
                   notes[str]                        what an observer could not see of the window,
                   sidecars{ADMIN_URL: sidecar}      every proxy's own count over the window
                                                     (present when the experiment has proxies),
                   cost{cost}}]                      (present with steady_state.cost, or under
                                                     brownout demo)
verdicts         [verdict]   every window verdict, flat:
                 {phase, window, start, end, sli, subject, comparison: "<="|"<"|">="|">"|"==",
                  bound, value, ok, no_data, active_faults[], note, message}
                 subject: what the SLI was measured on besides its name ("" for the load's own
                 SLIs; a PromQL probe's series, e.g. {job="model-api"}); note: why no data,
                 or what the value was made of; per-route SLIs name their route:
                 retry_amplification[ROUTE] (note "320 arrivals / 100 sent"),
                 retry_after_violations[ROUTE] (brownout.steady.retries)
phases           [{phase, windows, held, stats{...}, quality{...}, streams{...} | null,
                   verdicts[verdict],                figures over the whole phase (window null:
                                                     retry amplification, ...); checks count windows
                   sidecars{...}, cost{...}}]        the phase's windows summed
sidecar          {ok, restarted, note, windows_without_data, requests,
                  routes{ROUTE: {requests, statuses{"200": n, ...}}}}   (ok false: no data)
cost             {source, cpu_seconds, successes, cpu_seconds_per_1k, joules, joules_per_1k,
                  energy_absent: str|null, windows, windows_without_cpu, notes[]}
                 successes: 2xx answers the load generator got in the windows whose CPU was
                 measured; per_1k: per 1,000 of them; joules: this machine's RAPL counters
checks           [{name, phase, sli, comparison, bound, windows, no_data, ok, failures[verdict], message}]
recovery         {faults_ended_at, within, deadline, recovered, time_to_recover_s} | null
extra            {}   runner additions (stress breaking points, edge-case findings, ...)
```
Values that could not be measured (no requests in a window) are ``null``; a verdict on
such a value has ``no_data: true`` (it neither fails nor holds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from brownout.exit_codes import ExitCode, Outcome, exit_code_for_outcome
from brownout.experiment.model import Experiment
from brownout.fleet.records import Arming, FleetRecord
from brownout.steady.checker import PhaseResult, WindowResult
from brownout.steady.verdicts import Check, RecoveryResult
from faults.errors import InvalidInput

JOURNAL_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TimelineEvent:
    t: float
    event: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Injection:
    """One fault or action of the method, planned and as it happened."""

    id: str
    step: int
    kind: Literal["fault", "action"]
    name: str                      # fault type, or the action (kill, stop, pause, restart)
    target: str                    # route, container or pid file
    planned_at: float
    planned_until: float | None = None
    proxy: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    removed: bool = False
    error: str | None = None
    trace_id: str | None = None    # the run's trace, when traced; span_id: this injection's span in it
    span_id: str | None = None
    trace_url: str | None = None   # tracing.link_template filled in
    arming: Arming | None = None  # a fault on a group of sidecars: who, and when each started and ended it

    def describe(self) -> str:
        return f"{self.name}@{self.target}"


@dataclass(frozen=True)
class RunReport:
    """What the runner hands to the journal, the JUnit writer and the summary."""

    experiment: Experiment | None
    outcome: Outcome
    reason: str
    started_at: datetime
    ended_at: datetime
    timeline: Sequence[TimelineEvent] = ()
    windows: Sequence[WindowResult] = ()
    phases: Sequence[PhaseResult] = ()
    checks: Sequence[Check] = ()
    injections: Sequence[Injection] = ()
    recovery: RecoveryResult | None = None
    source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    trace_id: str | None = None    # the experiment span's trace (None: not traced)
    trace_url: str | None = None
    fleet: FleetRecord | None = None

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for_outcome(self.outcome)

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def source_text(self) -> str:
        if self.source:
            return self.source
        exp = self.experiment
        return str(exp.source) if exp is not None and exp.source is not None else ""

    @property
    def title(self) -> str:
        return self.experiment.title if self.experiment is not None else (self.source or "experiment")


def _version() -> str:
    try:
        return metadata.version("brownout")
    except metadata.PackageNotFoundError:
        return "unknown"


def _clean(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def journal_dict(report: RunReport) -> dict[str, Any]:
    exp = report.experiment
    source = report.source_text or None
    return _clean({
        "schema_version": JOURNAL_SCHEMA_VERSION,
        "brownout_version": _version(),
        "status": {"outcome": report.outcome.value, "exit_code": int(report.exit_code), "reason": report.reason},
        "experiment": {
            "source": source, "title": report.title, "seed": exp.seed if exp is not None else None,
            "definition": exp.redacted() if exp is not None else None,
        },
        "started_at": report.started_at.isoformat(),
        "ended_at": report.ended_at.isoformat(),
        "duration_s": report.duration_s,
        "trace_id": report.trace_id,
        "trace_url": report.trace_url,
        "timeline": [{"t": e.t, "event": e.event, "detail": dict(e.detail)} for e in report.timeline],
        "injections": [
            {"id": i.id, "step": i.step, "kind": i.kind, "name": i.name, "target": i.target, "proxy": i.proxy,
             "planned_at": i.planned_at, "planned_until": i.planned_until, "started_at": i.started_at,
             "ended_at": i.ended_at, "params": dict(i.params), "removed": i.removed, "error": i.error,
             "trace_id": i.trace_id, "span_id": i.span_id, "trace_url": i.trace_url,
             "arming": i.arming.as_dict() if i.arming is not None else None}
            for i in report.injections
        ],
        "fleet": report.fleet.as_dict() if report.fleet is not None else None,
        "windows": [w.as_dict() for w in report.windows],
        "verdicts": [v.as_dict() for w in report.windows for v in w.verdicts],
        "phases": [p.as_dict() for p in report.phases],
        "checks": [c.as_dict() for c in report.checks],
        "recovery": report.recovery.as_dict() if report.recovery is not None else None,
        "extra": dict(report.extra),
    })


def write_journal(report: RunReport, path: Path) -> Path:
    """Write atomically (temp file, then rename) so a crash never leaves half a journal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(journal_dict(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_journal(path: Path) -> dict[str, Any]:
    """Read a journal back; refuse one of another schema version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read journal: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or data.get("schema_version") != JOURNAL_SCHEMA_VERSION:
        raise InvalidInput(f"not a journal of schema version {JOURNAL_SCHEMA_VERSION}", "schema_version", source=str(path))
    return data
