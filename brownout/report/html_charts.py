"""The report's charts (plotly): every run-time chart shades the fault windows and marks the phases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from brownout.report.html_model import ProbeSeries, ReportView, StressSeries, WindowPoint

FAULT_COLOR = "#d62728"
_PHASE_COLOR = "#555555"
_HEIGHT = 340
_MAX_LINES = 12  # series drawn per probe chart (the verdicts name them all)


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    figure: go.Figure


def _layout(fig: go.Figure, view: ReportView, y_title: str, **yaxis: object) -> go.Figure:
    end = view.duration_s or max((w.end for w in view.windows), default=0.0)
    fig.update_layout(
        template="plotly_white", height=_HEIGHT, margin={"l": 60, "r": 30, "t": 40, "b": 50},
        legend={"orientation": "h", "y": -0.22}, hovermode="x unified",
    )
    fig.update_xaxes(title_text="seconds since the run started", range=[0, end] if end else None)
    fig.update_yaxes(title_text=y_title, rangemode="tozero", **yaxis)
    return fig


def shade_faults(fig: go.Figure, view: ReportView) -> None:
    """One shaded band per injection, from when it started to when it was removed."""
    for inj in view.injections:
        span = inj.span
        if span is None:
            continue
        start, end = span
        label = escape(inj.label)
        if end is None or end <= start:  # an instant action (kill, restart): a line, not a band
            fig.add_vline(x=start, line={"color": FAULT_COLOR, "dash": "dash", "width": 2},
                          annotation_text=label, annotation_position="top right",
                          annotation_font_color=FAULT_COLOR)
        else:
            fig.add_vrect(x0=start, x1=end, fillcolor=FAULT_COLOR, opacity=0.13, line_width=0, layer="below",
                          annotation_text=label, annotation_position="top left",
                          annotation_font_color=FAULT_COLOR)


def phase_starts(view: ReportView) -> list[tuple[float, str]]:
    """Where each phase begins: from the windows (a phase change), else from the phase rows."""
    starts: list[tuple[float, str]] = []
    previous = None
    for w in view.windows:
        if w.phase != previous:
            starts.append((w.start, w.phase))
            previous = w.phase
    if not starts:
        starts = [(p.start, p.phase) for p in view.phases if p.start is not None]
    return starts


def mark_phases(fig: go.Figure, view: ReportView) -> None:
    for start, phase in phase_starts(view):
        fig.add_vline(x=start, line={"color": _PHASE_COLOR, "dash": "dot", "width": 1},
                      annotation_text=escape(phase), annotation_position="bottom right",
                      annotation_font={"color": _PHASE_COLOR, "size": 11})


def _bound_line(fig: go.Figure, view: ReportView, sli: str, label: str, **kwargs: object) -> None:
    bound = view.bound(sli)
    if bound is not None:
        comparison, value = bound
        fig.add_hline(y=value, line={"color": "#7f7f7f", "dash": "dash", "width": 1},
                      annotation_text=escape(f"{label} {comparison} {value:g}"),
                      annotation_position="top right", **kwargs)


def _hover(windows: Sequence[WindowPoint]) -> list[str]:
    return [escape(f"window {w.index} ({w.start:g}s–{w.end:g}s, {w.phase})"
                   + (f"; faults: {', '.join(w.active_faults)}" if w.active_faults else "")
                   + ("" if w.ok else "; FAILED")) for w in windows]


def _series(fig: go.Figure, view: ReportView, name: str, value: Callable[[WindowPoint], float | None],
            secondary_y: bool | None = None, **kwargs: object) -> None:
    windows = view.windows
    trace = go.Scatter(x=[w.mid for w in windows], y=[value(w) for w in windows], name=name, mode="lines+markers",
                       text=_hover(windows), hovertemplate="%{y}<br>%{text}", connectgaps=False, **kwargs)
    fig.add_trace(trace, secondary_y=secondary_y)


def _failed_windows(fig: go.Figure, view: ReportView, value: Callable[[WindowPoint], float | None]) -> None:
    failed = [w for w in view.windows if not w.ok]
    if failed:
        fig.add_trace(go.Scatter(x=[w.mid for w in failed], y=[value(w) for w in failed], name="window failed",
                                 mode="markers", marker={"symbol": "x", "size": 10, "color": FAULT_COLOR},
                                 text=_hover(failed), hovertemplate="%{text}"))


def _decorate(fig: go.Figure, view: ReportView) -> go.Figure:
    shade_faults(fig, view)
    mark_phases(fig, view)
    return fig


def latency_chart(view: ReportView) -> Chart:
    fig = go.Figure()
    _series(fig, view, "p50", lambda w: w.p50_ms)
    _series(fig, view, "p95", lambda w: w.p95_ms)
    _series(fig, view, "p99", lambda w: w.p99_ms)
    _failed_windows(fig, view, lambda w: w.p99_ms)
    _bound_line(fig, view, "latency_p99_ms", "SLA p99")
    return Chart("latency", "Latency percentiles per window", _decorate(_layout(fig, view, "ms"), view))


def error_chart(view: ReportView) -> Chart:
    fig = go.Figure()
    _series(fig, view, "error rate", lambda w: w.error_rate, line={"color": FAULT_COLOR})
    if any(w.dropped_rate for w in view.windows):
        _series(fig, view, "dropped rate", lambda w: w.dropped_rate, line={"color": "#ff7f0e", "dash": "dot"})
    _bound_line(fig, view, "error_rate", "SLA error rate")
    return Chart("errors", "Error rate per window (5xx and transport errors)",
                 _decorate(_layout(fig, view, "share of requests", tickformat=".1%"), view))


def throughput_chart(view: ReportView) -> Chart:
    fig = go.Figure()
    _series(fig, view, "throughput", lambda w: w.throughput_rps, line={"color": "#2ca02c"})
    _bound_line(fig, view, "throughput_rps", "SLA throughput")
    return Chart("throughput", "Throughput per window", _decorate(_layout(fig, view, "requests per second"), view))


def quality_chart(view: ReportView) -> Chart | None:
    """Golden agreement (left axis) and score drift PSI (right axis), when the run measured them."""
    has_agreement = any(w.agreement is not None for w in view.windows)
    has_psi = any(w.psi is not None for w in view.windows)
    if not (has_agreement or has_psi):
        return None
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if has_agreement:
        _series(fig, view, "golden agreement", lambda w: w.agreement, line={"color": "#1f77b4"})
        _bound_line(fig, view, "golden_agreement", "min agreement")
    if has_psi:
        _series(fig, view, "PSI (drift)", lambda w: w.psi, line={"color": "#9467bd", "dash": "dash"},
                secondary_y=True)
        _bound_line(fig, view, "score_psi", "max PSI", secondary_y=True)
    _layout(fig, view, "golden agreement", tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title_text="PSI", rangemode="tozero", secondary_y=True, showgrid=False)
    return Chart("quality", "Prediction quality: golden agreement and drift (PSI) per window", _decorate(fig, view))


def probe_chart(view: ReportView, probe: ProbeSeries, number: int) -> Chart:
    """A PromQL probe's value per window, a line per series it returned, with its bound."""
    fig = go.Figure()
    failed_x: list[float] = []
    failed_y: list[float | None] = []
    for subject, points in probe.lines[:_MAX_LINES]:
        label = subject or probe.name
        hover = [escape(f"window {p.window}: {label}" + ("" if p.ok else "; FAILED")) for p in points]
        fig.add_trace(go.Scatter(x=[p.mid for p in points], y=[p.value for p in points], name=escape(label),
                                 mode="lines+markers", text=hover, hovertemplate="%{y}<br>%{text}", connectgaps=False))
        failed_x += [p.mid for p in points if not p.ok]
        failed_y += [p.value if p.value is not None else 0.0 for p in points if not p.ok]
    if failed_x:
        fig.add_trace(go.Scatter(x=failed_x, y=failed_y, name="window failed", mode="markers",
                                 marker={"symbol": "x", "size": 10, "color": FAULT_COLOR}, hoverinfo="skip"))
    for comparison, bound in probe.bounds:
        fig.add_hline(y=bound, line={"color": "#7f7f7f", "dash": "dash", "width": 1},
                      annotation_text=escape(f"bound {comparison} {bound:g}"), annotation_position="top right")
    more = f" (first {_MAX_LINES} of {len(probe.lines)} series)" if len(probe.lines) > _MAX_LINES else ""
    title = f"PromQL probe {probe.name}: {probe.query}{more}"
    return Chart(f"probe-{number}", title, _decorate(_layout(fig, view, probe.name), view))


def cost_chart(view: ReportView) -> Chart | None:
    """CPU-seconds (left) and joules (right, where RAPL is readable) per 1,000 successful predictions."""
    cost = view.cost
    if cost is None:
        return None
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [p.mid for p in cost.points]
    fig.add_trace(go.Scatter(x=x, y=[p.cpu_per_1k for p in cost.points], name="CPU-seconds per 1,000",
                             mode="lines+markers", line={"color": "#8c564b"}, connectgaps=False), secondary_y=False)
    has_energy = any(p.joules_per_1k is not None for p in cost.points)
    if has_energy:
        fig.add_trace(go.Scatter(x=x, y=[p.joules_per_1k for p in cost.points], name="joules per 1,000",
                                 mode="lines+markers", line={"color": "#e377c2", "dash": "dash"}, connectgaps=False),
                      secondary_y=True)
    _layout(fig, view, "CPU-seconds per 1,000 successful predictions", secondary_y=False)
    fig.update_yaxes(title_text="joules per 1,000" if has_energy else "", rangemode="tozero", secondary_y=True,
                     showgrid=False, visible=has_energy)
    energy = "" if has_energy or cost.energy_absent is None else f"; energy not measured: {cost.energy_absent}"
    title = f"Cost per 1,000 successful predictions per window ({cost.source}){energy}"
    return Chart("cost", title, _decorate(fig, view))


def stress_chart(view: ReportView) -> Chart | None:
    """The stress search: p99 and error rate at each rate step, without and with faults."""
    if not view.stress:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=("p99 latency per step (ms)", "error rate per step"))
    colors = {"without faults": "#1f77b4", "with faults": FAULT_COLOR}
    for series in view.stress:
        _stress_traces(fig, series, colors.get(series.label, "#333333"))
    for sli, col, label in (("latency_p99_ms", 1, "SLA p99"), ("error_rate", 2, "SLA error rate")):
        bound = view.bound(sli)
        if bound is not None:
            fig.add_hline(y=bound[1], row=1, col=col, line={"color": "#7f7f7f", "dash": "dash", "width": 1},
                          annotation_text=escape(f"{label} {bound[0]} {bound[1]:g}"))
    fig.update_layout(template="plotly_white", height=_HEIGHT, margin={"l": 60, "r": 30, "t": 40, "b": 50},
                      legend={"orientation": "h", "y": -0.22})
    fig.update_xaxes(title_text="offered rate (requests per second)")
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(tickformat=".1%", row=1, col=2)
    return Chart("stress", "p99 latency and error rate at each rate step, without and with faults", fig)


def _stress_traces(fig: go.Figure, series: StressSeries, color: str) -> None:
    rates = [s.rate for s in series.steps]
    symbols = ["circle" if s.held else "x" for s in series.steps]
    hover = [escape(f"{series.label}: {s.rate:g} rps, {'held' if s.held else 'broke'}") for s in series.steps]
    for col, values in ((1, [s.p99_ms for s in series.steps]), (2, [s.error_rate for s in series.steps])):
        fig.add_trace(go.Scatter(x=rates, y=values, name=escape(series.label), legendgroup=series.label,
                                 showlegend=col == 1, mode="lines+markers", text=hover,
                                 hovertemplate="%{y}<br>%{text}", line={"color": color},
                                 marker={"symbol": symbols, "size": 9}), row=1, col=col)


def run_charts(view: ReportView) -> list[Chart]:
    """The charts over run time; none when the run closed no window."""
    if not view.windows:
        return []
    charts = [latency_chart(view), error_chart(view), throughput_chart(view), quality_chart(view),
              *(probe_chart(view, p, i) for i, p in enumerate(view.probes)), cost_chart(view)]
    return [c for c in charts if c is not None]
