"""What the HTML report shows, parsed once from a journal dict into frozen types.

Tolerant by design: any journal of the current schema renders, also one a run wrote before it
measured everything (missing keys and ``null`` values become ``None``/empty). A value of the
wrong shape where a structure is required is an ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brownout.fleet.slis import ERROR_RATE, THROUGHPUT, SidecarRow, breakdown

from faults.errors import InvalidInput


@dataclass(frozen=True)
class WindowPoint:
    index: int
    phase: str
    start: float
    end: float
    ok: bool
    active_faults: tuple[str, ...]
    sent: int | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    throughput_rps: float | None
    dropped_rate: float | None
    agreement: float | None
    psi: float | None

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2


@dataclass(frozen=True)
class InjectionRow:
    id: str
    kind: str
    label: str                     # name@target, as verdicts name active faults
    planned_at: float | None
    planned_until: float | None
    started_at: float | None
    ended_at: float | None
    params: str
    state: str
    trace_url: str | None = None   # its span in the run's trace (tracing.link_template)
    sidecars: str = ""  # on a group: which members, and how close together they started and ended

    @property
    def span(self) -> tuple[float, float | None] | None:
        """When it was in effect: (start, end); end ``None`` for an instant (an action)."""
        if self.started_at is None:
            return None
        return self.started_at, self.ended_at if self.ended_at is not None else self.planned_until


@dataclass(frozen=True)
class CheckRow:
    name: str
    phase: str
    sli: str
    comparison: str
    bound: float | None
    windows: int | None
    ok: bool
    worst: float | None            # the worst value any window of the phase measured
    failures: int
    message: str
    no_data: int = 0  # windows without data for this SLI

    @property
    def judged(self) -> bool:
        return self.windows is None or self.no_data < self.windows


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    start: float | None
    end: float | None
    windows: int | None
    held: bool | None
    sent: int | None
    error_rate: float | None
    throughput_rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    agreement: float | None
    psi: float | None
    replay: ReplaySummary | None = None


@dataclass(frozen=True)
class ReplaySummary:
    """A phase's replay agreement: answers compared, agreed, disagreements by kind, the first examples."""

    compared: int
    agreement: float | None
    kinds: tuple[tuple[str, int], ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    t: float | None
    event: str
    detail: str


@dataclass(frozen=True)
class StressStep:
    rate: float
    held: bool
    p99_ms: float | None
    error_rate: float | None


@dataclass(frozen=True)
class StressSeries:
    label: str
    describe: str
    held_rate: float | None
    steps: tuple[StressStep, ...]


@dataclass(frozen=True)
class ProbePoint:
    window: int
    mid: float
    value: float | None
    ok: bool


@dataclass(frozen=True)
class ProbeSeries:
    """One PromQL probe over time: a line per series it returned (``subject``: its labels)."""

    name: str
    query: str
    bounds: tuple[tuple[str, float], ...]
    lines: tuple[tuple[str, tuple[ProbePoint, ...]], ...]


@dataclass(frozen=True)
class CostPoint:
    mid: float
    cpu_per_1k: float | None
    joules_per_1k: float | None


@dataclass(frozen=True)
class CostView:
    source: str
    energy_absent: str | None
    points: tuple[CostPoint, ...]
    phases: tuple[tuple[str, float | None, float | None], ...]  # (phase, CPU-s/1k, J/1k)


@dataclass(frozen=True)
class ReportView:
    title: str
    outcome: str
    exit_code: int | None
    reason: str
    source: str
    seed: int | None
    started_at: str
    duration_s: float | None
    version: str
    windows: tuple[WindowPoint, ...]
    injections: tuple[InjectionRow, ...]
    checks: tuple[CheckRow, ...]
    phases: tuple[PhaseRow, ...]
    events: tuple[Event, ...]
    recovery: str | None
    stress: tuple[StressSeries, ...]
    capacity_under_fault: float | None
    probes: tuple[ProbeSeries, ...] = ()
    cost: CostView | None = None
    trace_url: str | None = None   # the run's trace
    sidecars: tuple[SidecarRow, ...] = ()  # each sidecar's own counts per phase (a fleet)
    failed_sidecars: frozenset[tuple[str, str]] = frozenset()  # (phase, sidecar) with a failed fleet SLI

    def bound(self, sli: str) -> tuple[str, float] | None:
        """The SLA bound of ``sli`` (the same in every phase), for a line on its chart."""
        for c in self.checks:
            if c.sli == sli and c.bound is not None:
                return c.comparison, c.bound
        return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _map(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("must be an object", field)
    return value


def _list(value: Any, field: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput("must be a list", field)
    return value


def _items(journal: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [_map(item, f"{key}[{i}]") for i, item in enumerate(_list(journal.get(key), key))]


def _window(w: Mapping[str, Any], i: int) -> WindowPoint:
    stats, quality = _map(w.get("stats"), f"windows[{i}].stats"), _map(w.get("quality"), f"windows[{i}].quality")
    start, index = _num(w.get("start")) or 0.0, _int(w.get("index"))
    return WindowPoint(
        index=i if index is None else index, phase=_text(w.get("phase")), start=start,
        end=_num(w.get("end")) or start, ok=bool(w.get("ok", True)),
        active_faults=tuple(_text(f) for f in _list(w.get("active_faults"), f"windows[{i}].active_faults")),
        sent=_int(stats.get("sent")), p50_ms=_num(stats.get("p50_ms")), p95_ms=_num(stats.get("p95_ms")),
        p99_ms=_num(stats.get("p99_ms")), error_rate=_num(stats.get("error_rate")),
        throughput_rps=_num(stats.get("throughput_rps")), dropped_rate=_num(stats.get("dropped_rate")),
        agreement=_num(quality.get("agreement")), psi=_num(quality.get("psi")),
    )


def _injection(j: Mapping[str, Any]) -> InjectionRow:
    error = j.get("error")
    if error:
        state = f"failed: {error}"
    elif j.get("started_at") is None:
        state = "not started"
    else:
        state = "removed" if j.get("removed") else ("done" if j.get("kind") == "action" else "not removed")
    return InjectionRow(
        id=_text(j.get("id")), kind=_text(j.get("kind")), label=f"{_text(j.get('name'))}@{_text(j.get('target'))}",
        planned_at=_num(j.get("planned_at")), planned_until=_num(j.get("planned_until")),
        started_at=_num(j.get("started_at")), ended_at=_num(j.get("ended_at")),
        params=json.dumps(j.get("params") or {}, sort_keys=True), state=state, sidecars=_arming(j.get("arming")),
        trace_url=_text(j.get("trace_url")) or None,
    )


def _arming(arming: Any) -> str:
    if not isinstance(arming, Mapping) or (_text(arming.get("targets")).endswith(" 1 of 1")
                                           and not arming.get("failed")):
        return ""  # one proxy: nothing to add
    skews = [f"{name} skew {value:.2f} ms" for name, key in (("arm", "arm_skew_ms"), ("disarm", "disarm_skew_ms"))
             if (value := _num(arming.get(key))) is not None]
    failed = [f"{k}: {v}" for k, v in (arming.get("failed") or {}).items()]
    members = ", ".join(_text(s) for s in arming.get("sidecars") or [])
    return "; ".join([f"{_text(arming.get('targets'))}: {members}", *skews, *failed])


def _worst(verdicts: Sequence[Mapping[str, Any]], phase: str, sli: str, comparison: str) -> float | None:
    values = [v for x in verdicts if x.get("phase") == phase and x.get("sli") == sli
              if (v := _num(x.get("value"))) is not None]
    if not values:
        return None
    return min(values) if comparison == ">=" else max(values)


def _check(c: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]]) -> CheckRow:
    phase, sli, comparison = _text(c.get("phase")), _text(c.get("sli")), _text(c.get("comparison"))
    failures = c.get("failures")
    return CheckRow(
        name=_text(c.get("name")), phase=phase, sli=sli, comparison=comparison, bound=_num(c.get("bound")),
        windows=_int(c.get("windows")), ok=bool(c.get("ok")), worst=_worst(verdicts, phase, sli, comparison),
        failures=len({f.get("window") for f in failures if isinstance(f, Mapping)}) if isinstance(failures, list) else 0,
        message=_text(c.get("message")),
        no_data=_int(c.get("no_data")) or 0,
    )


def _phase(p: Mapping[str, Any], i: int) -> PhaseRow:
    stats, quality = _map(p.get("stats"), f"phases[{i}].stats"), _map(p.get("quality"), f"phases[{i}].quality")
    held = p.get("held")
    return PhaseRow(
        phase=_text(p.get("phase")), start=_num(stats.get("start")), end=_num(stats.get("end")),
        windows=_int(p.get("windows")), held=held if isinstance(held, bool) else None, sent=_int(stats.get("sent")),
        error_rate=_num(stats.get("error_rate")), throughput_rps=_num(stats.get("throughput_rps")),
        p50_ms=_num(stats.get("p50_ms")), p95_ms=_num(stats.get("p95_ms")), p99_ms=_num(stats.get("p99_ms")),
        agreement=_num(quality.get("agreement")), psi=_num(quality.get("psi")),
        replay=_replay(_map(quality.get("replay"), f"phases[{i}].quality.replay")),
    )


def _replay(r: Mapping[str, Any]) -> ReplaySummary | None:
    compared = _int(r.get("compared"))
    if not compared:
        return None
    kinds = _map(r.get("disagreements"), "replay.disagreements")
    return ReplaySummary(compared, _num(r.get("agreement")),
                         tuple((str(k), _int(v) or 0) for k, v in kinds.items()),
                         tuple(_text(e) for e in _list(r.get("examples"), "replay.examples")))


def _recovery(r: Mapping[str, Any]) -> str | None:
    if not r:
        return None
    within, took = _num(r.get("within")), _num(r.get("time_to_recover_s"))
    limit = f"within {within:g}s" if within is not None else "no limit"
    if r.get("recovered"):
        return f"SLA held again {took or 0:g}s after the faults ended ({limit})"
    seen = "not in the windows observed" if took is None else f"after {took:g}s"
    return f"FAILED: {limit} required, recovered {seen}"


def _stress(extra: Mapping[str, Any]) -> tuple[tuple[StressSeries, ...], float | None]:
    stress = _map(extra.get("stress"), "extra.stress")
    series = []
    for key, label in (("without_faults", "without faults"), ("with_faults", "with faults")):
        point = _map(stress.get(key), f"extra.stress.{key}")
        if not point:
            continue
        steps = tuple(
            StressStep(rate=rate, held=bool(s.get("held")), p99_ms=_num(s.get("p99_ms")), error_rate=_num(s.get("error_rate")))
            for i, s in enumerate(_list(point.get("steps"), f"extra.stress.{key}.steps"))
            if (rate := _num(_map(s, f"extra.stress.{key}.steps[{i}]").get("rate"))) is not None
        )
        series.append(StressSeries(label, _text(point.get("describe")), _num(point.get("held_rate")), steps))
    return tuple(series), _num(stress.get("capacity_under_fault"))


def _probes(definition: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]],
            windows: Sequence[Mapping[str, Any]]) -> tuple[ProbeSeries, ...]:
    steady = _map(definition.get("steady_state"), "experiment.definition.steady_state")
    mids = {_int(w.get("index")): ((_num(w.get("start")) or 0.0) + (_num(w.get("end")) or 0.0)) / 2 for w in windows}
    out = []
    for i, probe in enumerate(_list(steady.get("probes"), "experiment.definition.steady_state.probes")):
        name = _text(_map(probe, f"experiment.definition.steady_state.probes[{i}]").get("name"))
        mine = [v for v in verdicts if v.get("sli") == name and _int(v.get("window")) in mids]
        bounds = tuple(dict.fromkeys((_text(v.get("comparison")), b) for v in mine if (b := _num(v.get("bound"))) is not None))
        lines: dict[str, dict[int, ProbePoint]] = {}
        for v in mine:
            index = _int(v.get("window"))
            assert index is not None
            points = lines.setdefault(_text(v.get("subject")), {})
            seen = points.get(index)  # several terms of a bound: one point, failed if any failed
            ok = bool(v.get("ok")) and (seen is None or seen.ok)
            points[index] = ProbePoint(index, mids[index], _num(v.get("value")), ok)
        out.append(ProbeSeries(name, _text(probe.get("query")), bounds,
                               tuple((subject, tuple(sorted(p.values(), key=lambda p: p.window)))
                                     for subject, p in lines.items())))
    return tuple(out)


def _cost(windows: Sequence[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]) -> CostView | None:
    costs = [(w, _map(w.get("cost"), f"windows[{i}].cost")) for i, w in enumerate(windows) if w.get("cost")]
    if not costs:
        return None
    points = tuple(CostPoint(((_num(w.get("start")) or 0.0) + (_num(w.get("end")) or 0.0)) / 2,
                             _num(c.get("cpu_seconds_per_1k")), _num(c.get("joules_per_1k"))) for w, c in costs)
    by_phase = tuple((_text(p.get("phase")), _num(c.get("cpu_seconds_per_1k")), _num(c.get("joules_per_1k")))
                     for i, p in enumerate(phases) if (c := _map(p.get("cost"), f"phases[{i}].cost")))
    first = costs[0][1]
    absent = first.get("energy_absent")
    return CostView(_text(first.get("source")), None if absent is None else _text(absent), points, by_phase)


def parse_journal(journal: Mapping[str, Any]) -> ReportView:
    if not isinstance(journal, Mapping):
        raise InvalidInput("a journal must be a JSON object")
    status, experiment = _map(journal.get("status"), "status"), _map(journal.get("experiment"), "experiment")
    verdicts = _items(journal, "verdicts")
    windows = _items(journal, "windows")
    stress, capacity = _stress(_map(journal.get("extra"), "extra"))
    return ReportView(
        title=_text(experiment.get("title")) or "experiment", outcome=_text(status.get("outcome")) or "unknown",
        exit_code=_int(status.get("exit_code")), reason=_text(status.get("reason")),
        source=_text(experiment.get("source")), seed=_int(experiment.get("seed")),
        started_at=_text(journal.get("started_at")), duration_s=_num(journal.get("duration_s")),
        version=_text(journal.get("brownout_version")),
        windows=tuple(_window(w, i) for i, w in enumerate(windows)),
        injections=tuple(_injection(j) for j in _items(journal, "injections")),
        checks=tuple(_check(c, verdicts) for c in _items(journal, "checks")),
        phases=tuple(_phase(p, i) for i, p in enumerate(_items(journal, "phases"))),
        events=tuple(Event(_num(e.get("t")), _text(e.get("event")), json.dumps(e.get("detail") or {}, sort_keys=True))
                     for e in _items(journal, "timeline")),
        recovery=_recovery(_map(journal.get("recovery"), "recovery")),
        stress=stress, capacity_under_fault=capacity,
        probes=_probes(_map(experiment.get("definition"), "experiment.definition"), verdicts, windows),
        cost=_cost(windows, _items(journal, "phases")), trace_url=_text(journal.get("trace_url")) or None,
        sidecars=tuple(breakdown(_items(journal, "phases"), _sidecar_route(experiment))),
        failed_sidecars=frozenset((_text(v.get("phase")), _text(v.get("subject"))) for v in verdicts
                                  if v.get("sli") in (ERROR_RATE, THROUGHPUT) and v.get("ok") is False),
    )


def _sidecar_route(experiment: Mapping[str, Any]) -> str | None:
    definition = _map(experiment.get("definition"), "experiment.definition")
    spec = _map(_map(definition.get("steady_state"), "steady_state").get("sidecars"), "steady_state.sidecars")
    route = spec.get("route")
    return route if isinstance(route, str) else None
