"""The HTML report's retry figures: amplification per window over time with the fault windows
shaded (early retries on a second axis), and a table of each phase's own figures per route.

Read from the journal's verdicts (``retry_amplification[ROUTE]``, ``retry_after_violations[ROUTE]``:
``brownout.steady.retries``) and the phases' own verdicts; tolerant like ``html_model``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from brownout.report.html_charts import FAULT_COLOR, Chart, _decorate, _layout
from brownout.report.html_model import ProbePoint, ReportView, _int, _list, _map, _num, _text
from brownout.steady.retries import AMPLIFICATION, VIOLATIONS, parse_sli


@dataclass(frozen=True)
class RetryLine:
    """One SLI of one route over the run's windows."""

    points: tuple[ProbePoint, ...] = ()
    bound: float | None = None


@dataclass(frozen=True)
class RetryRoute:
    route: str
    amplification: RetryLine
    violations: RetryLine
    phases: tuple[tuple[str, float | None, float | None, bool], ...]  # (phase, amplification, early, held)


def _line(verdicts: Sequence[Mapping[str, Any]], mids: Mapping[int | None, float]) -> RetryLine:
    points = tuple(sorted((ProbePoint(i, mids[i], _num(v.get("value")), bool(v.get("ok")))
                           for v in verdicts if (i := _int(v.get("window"))) is not None and i in mids),
                          key=lambda p: p.window))
    return RetryLine(points, next((b for v in verdicts if (b := _num(v.get("bound"))) is not None), None))


def parse_retries(journal: Mapping[str, Any]) -> tuple[RetryRoute, ...]:
    """Every route a retry SLI judged, in the order the verdicts name them."""
    windows = [_map(w, f"windows[{i}]") for i, w in enumerate(_list(journal.get("windows"), "windows"))]
    mids = {_int(w.get("index")): ((_num(w.get("start")) or 0.0) + (_num(w.get("end")) or 0.0)) / 2 for w in windows}
    by_route: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for i, v in enumerate(_list(journal.get("verdicts"), "verdicts")):
        if (parsed := parse_sli(_text(_map(v, f"verdicts[{i}]").get("sli")))) is not None:
            by_route.setdefault(parsed[1], {}).setdefault(parsed[0], []).append(v)
    phases: dict[str, list[tuple[str, float | None, float | None, bool]]] = {}
    for i, p in enumerate(_list(journal.get("phases"), "phases")):
        figures: dict[str, dict[str, Mapping[str, Any]]] = {}
        for j, v in enumerate(_list(_map(p, f"phases[{i}]").get("verdicts"), f"phases[{i}].verdicts")):
            if (parsed := parse_sli(_text(_map(v, f"phases[{i}].verdicts[{j}]").get("sli")))) is not None:
                figures.setdefault(parsed[1], {})[parsed[0]] = v
        for route, f in figures.items():
            by_route.setdefault(route, {})
            held = all(bool(v.get("ok", True)) for v in f.values())
            phases.setdefault(route, []).append((_text(p.get("phase")), _num(f.get(AMPLIFICATION, {}).get("value")),
                                                 _num(f.get(VIOLATIONS, {}).get("value")), held))
    return tuple(RetryRoute(route, _line(slis.get(AMPLIFICATION, []), mids), _line(slis.get(VIOLATIONS, []), mids),
                            tuple(phases.get(route, ()))) for route, slis in by_route.items())


def retry_chart(view: ReportView, routes: Sequence[RetryRoute]) -> Chart | None:
    """Amplification per window, a line per route with its bound; early retries as bars on the right."""
    if not view.windows or not any(r.amplification.points or r.violations.points for r in routes):
        return None
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    failed_x: list[float] = []
    failed_y: list[float] = []
    has_violations = any(r.violations.points for r in routes)
    for r in routes:
        amp = r.amplification
        if amp.points:
            hover = [escape(f"window {p.window}: {r.route}" + ("" if p.ok else "; FAILED")) for p in amp.points]
            fig.add_trace(go.Scatter(x=[p.mid for p in amp.points], y=[p.value for p in amp.points], mode="lines+markers",
                                     name=escape(f"amplification {r.route}"), text=hover, connectgaps=False,
                                     hovertemplate="%{y:.3g}×<br>%{text}"), secondary_y=False)
            failed_x += [p.mid for p in amp.points if not p.ok]
            failed_y += [p.value if p.value is not None else 0.0 for p in amp.points if not p.ok]
            if amp.bound is not None:
                fig.add_hline(y=amp.bound, line={"color": "#7f7f7f", "dash": "dash", "width": 1}, secondary_y=False,
                              annotation_text=escape(f"{r.route} bound <= {amp.bound:g}"),
                              annotation_position="top right")
        if r.violations.points:
            fig.add_trace(go.Bar(x=[p.mid for p in r.violations.points], y=[p.value for p in r.violations.points],
                                 name=escape(f"early retries {r.route}"), opacity=0.45,
                                 marker={"color": ["#ff7f0e" if p.ok else FAULT_COLOR for p in r.violations.points]}),
                          secondary_y=True)
    if failed_x:
        fig.add_trace(go.Scatter(x=failed_x, y=failed_y, name="window failed", mode="markers", hoverinfo="skip",
                                 marker={"symbol": "x", "size": 10, "color": FAULT_COLOR}), secondary_y=False)
    _layout(fig, view, "arrivals per request sent", secondary_y=False)
    fig.update_yaxes(title_text="requests back before Retry-After" if has_violations else "", rangemode="tozero",
                     secondary_y=True, showgrid=False, visible=has_violations)
    return Chart("retries", "Retry amplification per window: arrivals on the route per request the load sent",
                 _decorate(fig, view))


def retry_table(routes: Sequence[RetryRoute]) -> str:
    """Each phase's own figures per route ('' when the run judged no retries)."""
    rows = [(r.route, phase, amp, early, held) for r in routes for phase, amp, early, held in r.phases]
    if not rows:
        return ""
    body = "".join(
        ("<tr>" if held else '<tr class="fail">') + f"<td>{escape(route)}</td><td>{escape(phase)}</td>"
        f'<td class="num">{"–" if amp is None else f"{amp:.3g}"}</td>'
        f'<td class="num">{"–" if early is None else f"{early:g}"}</td></tr>'
        for route, phase, amp, early, held in rows)
    return ("<h2>Retries per phase</h2><p class=\"muted\">Amplification: arrivals on the route (retries and the "
            "fault's own refusals included) per request the load generator sent; 1 is one call per request. Early "
            "retries: requests that came back before the Retry-After they were given.</p>"
            "<table><thead><tr><th>route</th><th>phase</th><th>amplification</th><th>early retries</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")
