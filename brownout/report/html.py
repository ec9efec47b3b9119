"""The HTML report: one self-contained file (plotly.js inlined) that opens offline.

One rendering path: a ``RunReport`` becomes its journal dict first, so ``brownout report
journal.json`` renders exactly what ``brownout run`` wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

import plotly.io as pio

from brownout.report.html_charts import Chart, run_charts, stress_chart
from brownout.report.html_model import ReportView, parse_journal
from brownout.report.html_retries import parse_retries, retry_chart, retry_table
from brownout.report.journal import RunReport, journal_dict

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#222}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top;white-space:nowrap}
td:last-child{white-space:normal}
th{background:#f6f6f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fdecea}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.badge{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:700;letter-spacing:.03em}
.badge.held{background:#1a7f37}.badge.other{background:#c62828}dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dt{color:#666}dd{margin:0}code{font-size:12px}.chart{margin:8px 0 18px}.muted{color:#777}
"""
_HEADLINES = {
    "held": "HELD: the SLA was met before, during and after the faults",
    "deviated": "DEVIATED: the SLA or prediction quality was violated",
    "aborted": "ABORTED by a safeguard (abort_when)",
    "baseline_failed": "ABORTED: the steady state did not hold before any fault (baseline)",
    "invalid": "INVALID INPUT",
    "could_not_run": "COULD NOT RUN",
    "interrupted": "INTERRUPTED (cleanup done)",
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float | None, fmt: str = ".4g") -> str:
    return "–" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def _sli_value(sli: str, value: float | None) -> str:
    return _pct(value) if sli in ("error_rate", "dropped_rate") and value is not None else _num(value)


def _table(headers: Iterable[str], rows: Iterable[tuple[list[str], bool]], numeric: frozenset[int] = frozenset()) -> str:
    """``rows`` are (already escaped cells, failed?)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for cells, failed in rows:
        tds = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(cells))
        body.append(f'<tr class="fail">{tds}</tr>' if failed else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ok(ok: bool | None) -> str:
    if ok is None:
        return "–"
    return '<span class="ok">✓ ok</span>' if ok else '<span class="bad">✗ failed</span>'


def _header(view: ReportView) -> str:
    badge = "held" if view.outcome == "held" else "other"
    headline = _HEADLINES.get(view.outcome, view.outcome.upper())
    exit_text = "–" if view.exit_code is None else str(view.exit_code)
    meta = [("outcome", f"{view.outcome} (exit code {exit_text})")]
    if view.reason:
        meta.append(("reason", view.reason))
    meta += [("experiment", view.source or "–"), ("seed", "–" if view.seed is None else str(view.seed)),
             ("started", view.started_at or "–"), ("duration", f"{_num(view.duration_s, '.1f')} s")]
    if view.recovery:
        meta.append(("recovery", view.recovery))
    if view.version:
        meta.append(("brownout", view.version))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    if view.trace_url:
        rows += f"<dt>trace</dt><dd>{_link(view.trace_url, 'the run in the tracing UI')}</dd>"
    return (f"<h1>{_e(view.title)}</h1>\n<p><span class=\"badge {badge}\">{_e(headline)}</span></p>\n"
            f"<dl>{rows}</dl>")


def _verdicts(view: ReportView) -> str:
    if not view.checks:
        return "<h2>Verdicts</h2><p class=\"muted\">No checks were evaluated.</p>"
    passed = sum(c.ok for c in view.checks)
    rows = [([_e(c.name), _e(c.phase), _e(c.sli), _e(f"{c.comparison} {_sli_value(c.sli, c.bound)}"),
              _e(_sli_value(c.sli, c.worst)), _e(f"{c.failures} of {'–' if c.windows is None else c.windows}"),
              _ok(c.ok) if c.judged else "no data", _e(c.message) if not c.ok or c.no_data else ""], not c.ok)
            for c in view.checks]
    table = _table(("check", "phase", "SLI", "bound", "worst window", "failed windows", "ok", "detail"), rows,
                   frozenset({4}))
    return (f"<h2>Verdicts</h2><p>{passed} of {len(view.checks)} checks passed.</p>{table}")


def _phases(view: ReportView) -> str:
    if not view.phases:
        return ""
    rows = [([_e(p.phase), _e(_num(p.windows, "d")), _ok(p.held), _e(_num(p.sent, "d")), _e(_pct(p.error_rate)),
              _e(_num(p.throughput_rps, ".1f")), _e(_num(p.p50_ms, ".1f")), _e(_num(p.p95_ms, ".1f")),
              _e(_num(p.p99_ms, ".1f")), _e(_pct(p.agreement)), _e(_num(p.psi, ".3f")),
              _e(_pct(p.replay.agreement) if p.replay is not None else "–")], p.held is False)
            for p in view.phases]
    headers = ("phase", "windows", "held", "sent", "errors", "rps", "p50 ms", "p95 ms", "p99 ms", "agreement", "PSI",
               "replay")
    return "<h2>Phases</h2>" + _table(headers, rows, frozenset(range(3, 12)) | {1}) + _replay(view)


def _replay(view: ReportView) -> str:
    """Which replayed answers disagreed with the recorded ones, and how."""
    replayed = [p for p in view.phases if p.replay is not None]
    if not replayed:
        return ""
    rows = []
    for p in replayed:
        r = p.replay
        assert r is not None
        kinds = ", ".join(f"{k} {n}" for k, n in r.kinds) or "none"
        examples = "<br>".join(f"<code>{_e(e)}</code>" for e in r.examples)
        rows.append(([_e(p.phase), _e(str(r.compared)), _e(_pct(r.agreement)), _e(kinds), examples], bool(r.kinds)))
    return "<h3>Replay agreement</h3>" + _table(("phase", "compared", "agreed", "disagreements", "first examples"),
                                               rows, frozenset({1, 2}))


def _cost(view: ReportView) -> str:
    cost = view.cost
    if cost is None or not cost.phases:
        return ""
    rows = [([_e(phase), _e(_num(cpu, ".4g")), _e(_num(joules, ".4g"))], False) for phase, cpu, joules in cost.phases]
    absent = f"<p class=\"muted\">Energy not measured: {_e(cost.energy_absent)}</p>" if cost.energy_absent else ""
    return (f"<h2>Cost per 1,000 successful predictions</h2><p class=\"muted\">{_e(cost.source)}</p>"
            + _table(("phase", "CPU-seconds", "joules"), rows, frozenset({1, 2})) + absent)


def _sidecars(view: ReportView) -> str:
    """Each sidecar's own counts per phase, when the run read more than one."""
    if len({r.sidecar for r in view.sidecars}) < 2:
        return ""
    rows = [([_e(r.phase), _e(r.sidecar), _e("no data" if r.requests is None else str(r.requests)),
              _e(_num(None if r.error_rate is None else r.error_rate * 100, ".2f")),
              _e((f"{r.windows_without_data} window(s) without data " if r.windows_without_data else "")
                 + ("restarted" if r.restarted else ""))],
             (r.phase, r.sidecar) in view.failed_sidecars or (r.phase, "fleet") in view.failed_sidecars)
            for r in view.sidecars]
    return ("<h2>Sidecars</h2><p class=\"muted\">What each sidecar counted itself (brownout_requests_total), "
            "per phase; highlighted: a fleet SLI failed there.</p>"
            + _table(("phase", "sidecar", "requests", "5xx %", "notes"), rows, frozenset({2, 3})))


def _span(start: float | None, end: float | None) -> str:
    if start is None:
        return "–"
    return f"{start:.2f}s" + ("" if end is None else f" – {end:.2f}s")


def _injections(view: ReportView) -> str:
    if not view.injections:
        return "<h2>Injections</h2><p class=\"muted\">Nothing was injected.</p>"
    traced = any(i.trace_url for i in view.injections)
    fleet = any(i.sidecars for i in view.injections)  # the column only when a step went to a group
    rows = [([_e(i.id), _e(i.kind), _e(i.label), _e(_span(i.planned_at, i.planned_until)),
              _e(_span(i.started_at, i.ended_at)), f"<code>{_e(i.params)}</code>", _e(i.state)]
             + ([_e(i.sidecars or "–")] if fleet else [])
             + ([_link(i.trace_url, "trace") if i.trace_url else "–"] if traced else []),
             i.state.startswith("failed") or i.state == "not removed") for i in view.injections]
    headers = (("id", "kind", "fault", "planned", "in effect", "params", "state") + (("sidecars",) if fleet else ())
               + (("trace",) if traced else ()))
    return "<h2>Injections</h2>" + _table(headers, rows)


def _link(url: str, text: str) -> str:
    """A link to a tracing UI; anything but http(s) is shown as text, never followed."""
    if not url.startswith(("http://", "https://")):
        return _e(url)
    return f'<a href="{_e(url)}" target="_blank" rel="noopener">{_e(text)}</a>'


def _chart_html(chart: Chart, first: bool) -> str:
    body = pio.to_html(chart.figure, full_html=False, include_plotlyjs=first, div_id=f"chart-{chart.id}",
                       config={"displaylogo": False, "responsive": True}, default_height="auto")
    return f'<div class="chart"><h3>{_e(chart.title)}</h3>{body}</div>'


def _stress_text(view: ReportView) -> str:
    lines = [f"<li>{_e(s.label)}: {_e(s.describe)}</li>" for s in view.stress if s.describe]
    if view.capacity_under_fault is not None:
        lines.append(f"<li>capacity under fault: {_e(_pct(view.capacity_under_fault))} of the fault-free breaking point</li>")
    return f"<ul>{''.join(lines)}</ul>" if lines else ""


def _timeline(view: ReportView) -> str:
    if not view.events:
        return ""
    rows = [([_e(_num(e.t, ".3f")), _e(e.event), f"<code>{_e(e.detail)}</code>" if e.detail != "{}" else ""],
             "abort" in e.event or "fail" in e.event or '"ok": false' in e.detail) for e in view.events]
    table = _table(("t (s)", "event", "detail"), rows, frozenset({0}))
    return f"<h2>Timeline</h2><details><summary>{len(view.events)} events</summary>{table}</details>"


def render_html_from_journal(journal: Mapping[str, Any]) -> str:
    """The whole page, from a journal dict (as ``journal.json`` holds it)."""
    view = parse_journal(journal)
    retries = parse_retries(journal)
    parts = [_header(view), _verdicts(view), _phases(view), _sidecars(view), _cost(view), retry_table(retries)]
    charts = [*run_charts(view), *filter(None, [retry_chart(view, retries)])]
    stress = stress_chart(view)
    first = True
    if charts:
        parts.append("<h2>Over time</h2><p class=\"muted\">Shaded bands: faults in effect; dotted lines: phase starts; "
                     "✗ markers: windows that failed a check.</p>")
        for chart in charts:
            parts.append(_chart_html(chart, first))
            first = False
    parts.append(_injections(view))
    if stress is not None:
        parts += ["<h2>Stress: breaking points</h2>", _stress_text(view), _chart_html(stress, first)]
    parts.append(_timeline(view))
    body = "\n".join(p for p in parts if p)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(view.title)} – brownout report</title><style>{_CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def write_html_from_journal(journal: Mapping[str, Any], path: Path) -> Path:
    """Write atomically (temp file, then rename), like the journal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html_from_journal(journal), encoding="utf-8")
    tmp.replace(path)
    return path


def write_html(report: RunReport, path: Path) -> Path:
    return write_html_from_journal(journal_dict(report), path)
