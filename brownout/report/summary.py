"""The terminal summary printed at the end of a run: verdict first, then the evidence."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from brownout.exit_codes import Outcome
from brownout.fleet.report import fleet_injection_lines, fleet_lines
from brownout.fleet.slis import breakdown, breakdown_lines
from brownout.report.journal import RunReport
from brownout.steady.retries import AMPLIFICATION, VIOLATIONS, parse_sli
from brownout.steady.verdicts import Verdict

_HEADLINE = {
    Outcome.HELD: "HELD: the SLA was met before, during and after the faults",
    Outcome.DEVIATED: "DEVIATED: the SLA or prediction quality was violated",
    Outcome.ABORTED: "ABORTED by a safeguard (abort_when)",
    Outcome.BASELINE_FAILED: "ABORTED: the steady state did not hold before any fault (baseline)",
    Outcome.INVALID: "INVALID INPUT",
    Outcome.COULD_NOT_RUN: "COULD NOT RUN",
    Outcome.INTERRUPTED: "INTERRUPTED (cleanup done)",
}
_GOOD = {Outcome.HELD}
_COLUMNS = ("phase", "windows", "sent", "err%", "drop%", "rps", "p50ms", "p95ms", "p99ms", "agree", "psi", "replay")


def _num(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def _cost(report: RunReport) -> list[str]:
    """CPU-seconds (and joules) per 1,000 successful predictions, per phase."""
    costs = [(p.phase, dict(p.observed)["cost"].as_dict()) for p in report.phases if "cost" in dict(p.observed)]
    if not costs:
        return []
    rows: list[tuple[str, ...]] = [("phase", "CPU-s", "2xx", "CPU-s/1k", "J/1k")]
    for phase, c in costs:
        rows.append((phase, _num(c["cpu_seconds"], digits=2), str(c["successes"]), _num(c["cpu_seconds_per_1k"], digits=3),
                     _num(c["joules_per_1k"], digits=1)))
    out = ["", f"  cost per 1,000 successful predictions ({costs[0][1]['source']}):", *_table(rows)]
    absent = costs[0][1]["energy_absent"]
    if absent:
        out.append(f"  energy: not measured: {absent}")
    notes = list(dict.fromkeys(n for _, c in costs for n in c["notes"]))
    out += [f"  cost: {n}" for n in notes[:3]]
    return out


def _retries(report: RunReport) -> list[str]:
    """Retry amplification and early retries per route and phase (each phase's own figure)."""
    figures: dict[tuple[str, str], dict[str, Verdict]] = {}
    for p in report.phases:
        for v in p.verdicts:
            if (parsed := parse_sli(v.sli)) is not None:
                figures.setdefault((parsed[1], p.phase), {})[parsed[0]] = v

    def cell(v: Verdict | None, digits: int) -> str:
        if v is None:
            return ""
        value = "-" if v.value is None else f"{v.value:.{digits}f}"
        return value if v.ok or v.value is None else f"{value} (bound {v.bound:g})"

    if not figures:
        return []
    rows: list[tuple[str, ...]] = [("route", "phase", "amplification", "early retries")]
    rows += [(route, phase, cell(f.get(AMPLIFICATION), 2), cell(f.get(VIOLATIONS), 0))
             for (route, phase), f in figures.items()]
    return ["", "  retries per phase (arrivals per request sent; requests back before their Retry-After):",
            *_table(rows)]


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


def render_summary(report: RunReport, *, paths: Mapping[str, Path] | None = None, color: bool = False) -> str:
    lines: list[str] = []
    headline = _HEADLINE[report.outcome]
    lines.append(_paint(f"{headline} (exit {int(report.exit_code)})", "32;1" if report.outcome in _GOOD else "31;1", color))
    lines.append(f"  {report.title}")
    source = report.source_text
    meta = [f"ran {report.duration_s:.1f}s"]
    if source:
        meta.insert(0, source)
    if report.experiment is not None:
        meta.append(f"seed {report.experiment.seed}")
    lines.append("  " + ", ".join(meta))
    if report.reason and report.outcome not in _GOOD:
        lines.append(f"  reason: {report.reason}")

    if report.phases:
        rows: list[tuple[str, ...]] = [_COLUMNS]
        for p in report.phases:
            s, q = p.stats, p.quality
            rows.append((p.phase, str(p.windows), str(s.sent), _num(s.error_rate, 100, 2), _num(s.dropped_rate, 100, 2),
                         _num(s.throughput_rps), _num(s.p50_ms), _num(s.p95_ms), _num(s.p99_ms),
                         _num(q.agreement, 100, 1), _num(q.psi, 1, 3), _num(q.replay_agreement, 100, 1)))
        lines += ["", *_table(rows)]
        for p in report.phases:
            if p.quality.replay_disagreements:
                kinds = ", ".join(f"{kind} {n}" for kind, n in p.quality.replay_disagreements)
                lines.append(f"  replay, {p.phase}: {p.quality.replay_compared - p.quality.replay_agreed} of "
                             f"{p.quality.replay_compared} answers disagreed ({kinds}); first:")
                lines += [f"    {example}" for example in p.quality.replay_examples]
        streamed = [p for p in report.phases if p.streams is not None and p.streams.streams]
        if streamed:
            rows = [("phase", "streams", "broken", "ttft p50", "ttft p99", "itl p99", "goodput%")]
            for p in streamed:
                t = p.streams
                assert t is not None
                rows.append((p.phase, str(t.streams), str(t.integrity_failures), _num(t.ttft_p50_ms), _num(t.ttft_p99_ms),
                             _num(t.itl_p99_ms), _num(t.goodput, 100, 1)))
            lines += ["", *_table(rows)]

        lines += _cost(report)
        lines += _retries(report)

    stress = report.extra.get("stress")
    if stress:
        lines += ["", f"  stress without faults: {stress['without_faults']['describe']}",
                  f"  stress with faults:    {stress['with_faults']['describe']}"]
        if stress.get("capacity_under_fault") is not None:
            lines.append(f"  capacity under fault: {stress['capacity_under_fault']:.0%} of the capacity without")

    if report.checks:
        failed = [c for c in report.checks if not c.ok]
        unjudged = [c for c in report.checks if c.ok and not c.judged]
        missing = f", {len(unjudged)} without data" if unjudged else ""
        lines += ["", f"  checks: {len(report.checks) - len(failed) - len(unjudged)} passed, {len(failed)} failed{missing}"]
        for c in failed:
            lines.append(_paint(f"  FAIL {c.message()}", "31", color))
        for c in unjudged:
            lines.append(f"  NO DATA {c.message()}")

    if report.recovery is not None:
        rec = report.recovery
        if rec.recovered:
            lines.append(f"  recovery: SLA held again {rec.time_to_recover_s:g}s after the faults ended (within {rec.within:g}s)")
        else:
            took = "not in the windows observed" if rec.time_to_recover_s is None else f"after {rec.time_to_recover_s:g}s"
            lines.append(_paint(f"  recovery: FAILED, within {rec.within:g}s required, recovered {took}", "31", color))

    aborts = [v for w in report.windows for v in w.abort]
    if aborts:
        lines.append(_paint(f"  safeguard: {aborts[0].message()}", "31", color))

    if report.injections:
        lines += ["", "  injections:"]
        for i in report.injections:
            when = f"{i.started_at:.2f}s" if i.started_at is not None else f"planned {i.planned_at:.2f}s"
            until = f"–{i.ended_at:.2f}s" if i.ended_at is not None else ""
            state = f"FAILED: {i.error}" if i.error else ("removed" if i.removed else "")
            lines.append(f"    {i.id:<18} {i.describe():<32} {when}{until} {state}".rstrip())
            lines += fleet_injection_lines(i.arming)

    if report.fleet is not None and any(len(g.sidecars) > 1 or g.how == "discover" for g in report.fleet.groups):
        lines += ["", *fleet_lines(report.fleet)]
    exp = report.experiment
    route = exp.steady_state.sidecars.route if exp is not None and exp.steady_state.sidecars is not None else None
    per_sidecar = breakdown_lines(breakdown([p.as_dict() for p in report.phases], route))
    if per_sidecar:
        lines += ["", *per_sidecar]

    if paths:
        lines += ["", "  reports: " + ", ".join(str(p) for p in paths.values())]
    return "\n".join(lines) + "\n"
