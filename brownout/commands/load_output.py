"""What ``brownout load`` prints: the SLA judged over the whole run, the summary, a stress search's
steps and its breaking point."""

from __future__ import annotations

import json
import sys

from brownout.experiment.steady import Sla
from brownout.load.generator import LoadSummary
from brownout.load.stress import BreakingPoint, StepResult, describe_breach
from brownout.steady.quality import QualityStats
from brownout.steady.verdicts import Verdict, evaluate_sla


def judge_run(summary: LoadSummary, sla: Sla | None) -> list[Verdict]:
    """The SLA over the whole run (one window), by the same evaluation as a run's windows."""
    if sla is None:
        return []
    return evaluate_sla(summary.total, QualityStats(), sla, None, phase="load")


def _n(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def format_summary(s: LoadSummary, sla: Sla | None, verdicts: list[Verdict]) -> str:
    t = s.total
    lines = [
        f"target    {s.target_url}  ({s.shape}, {s.planned_s:.1f}s{', stopped early' if s.stopped_early else ''})",
        f"requests  {s.scheduled} scheduled, {s.sent} sent, {s.dropped} dropped; achieved "
        f"{s.achieved_rate:.1f}/s of {s.target_rate:.1f}/s ({_ratio(s):.1%})",
        f"status    2xx {t.status_2xx}  3xx {t.status_3xx}  4xx {t.status_4xx}  "
        f"5xx {t.status_5xx}  transport errors {t.transport_errors}  (error rate {_n(t.error_rate, '.2%')})",
        f"latency   p50 {_n(t.p50_ms)}  p90 {_n(t.p90_ms)}  p95 {_n(t.p95_ms)}  p99 {_n(t.p99_ms)}  "
        f"p99.9 {_n(t.p999_ms)}  max {_n(t.max_ms)}  mean {_n(t.mean_ms)} ms",
        f"received  {t.bytes_received} bytes;  throughput {_n(t.throughput_rps, '.1f')}/s good answers;  "
        f"generator lag max {s.client_lag_max_s * 1000:.1f} ms",
    ]
    for case in s.edge_cases.cases:
        got = ", ".join(f"{k} {v}" for k, v in case.outcomes) or "none"
        lines.append(f"edge case {case.name}: {case.sent} sent ({got}); expected {'/'.join(case.expected)}")
    for f in s.edge_cases.findings:
        example = f"status {f.example_status}" if f.example_status else f"error {f.example_error}"
        lines.append(f"FINDING   {f.edge_case}: {f.count} got {f.got}, expected {'/'.join(f.expected)} ({example})")
    if sla is not None:
        breaches = [describe_breach(v) for v in verdicts if not v.ok]
        missing = [v.sli for v in verdicts if v.no_data]
        verdict = "violated: " + "; ".join(breaches) if breaches else "met"
        lines.append("SLA       " + verdict + (f" (no data for {', '.join(missing)})" if missing else ""))
    return "\n".join(lines)


def _ratio(s: LoadSummary) -> float:
    return s.achieved_rate / s.target_rate if s.target_rate else 0.0


def print_step(step: StepResult, as_json: bool) -> None:
    st = step.stats
    verdict = "held" if step.breach is None else f"BROKE: {describe_breach(step.breach)}"
    print(f"step {step.rate:g}/s: p50 {_n(st.p50_ms)} ms, p99 {_n(st.p99_ms)} ms, errors {_n(st.error_rate, '.2%')}, "
          f"{_n(st.throughput_rps, '.1f')}/s good, dropped {st.dropped} — {verdict}",
          file=sys.stderr if as_json else sys.stdout)


def print_breaking_point(point: BreakingPoint, as_json: bool) -> None:
    if as_json:
        print(json.dumps(point.as_dict(), indent=2, default=str))
    else:
        print(point.describe())
