"""The HTML report's charts of what observers saw: a chart per PromQL probe and the cost per
1,000 successful predictions, over time with the fault windows shaded (handcrafted journals)."""

from __future__ import annotations

from html import unescape
from typing import Any

from brownout.report.html import render_html_from_journal
from brownout.report.html_charts import cost_chart, probe_chart
from brownout.report.html_model import parse_journal
from tests.report.test_html import journal as base_journal

PROBE = {"name": "fallback-rate", "prometheus": "http://127.0.0.1:9090", "query": "sum(rate(x[5s]))",
         "bound": {"<=": 0.05}}


def _probe_verdict(window: int, subject: str, value: float | None, phase: str) -> dict[str, Any]:
    ok = value is None or value <= 0.05  # no data: on_empty: skip
    return {"phase": phase, "window": window, "start": float(window), "end": window + 1.0, "sli": "fallback-rate",
            "subject": subject, "comparison": "<=", "bound": 0.05, "value": value, "ok": ok, "no_data": value is None,
            "active_faults": [], "message": f"window {window}: fallback-rate {subject} = {value}"}


def journal() -> dict[str, Any]:
    j = base_journal()
    j["experiment"]["definition"] = {"steady_state": {"probes": [PROBE]}}
    phases = ["baseline", "baseline", "method", "method", "recovery"]
    values = {'{job="a"}': [0.0, 0.01, 0.4, 0.2, 0.0], '{job="b"}': [0.0, 0.0, 0.0, None, 0.0]}
    j["verdicts"] += [_probe_verdict(i, s, v[i], phases[i]) for s, v in values.items() for i in range(5)]
    for i, w in enumerate(j["windows"]):
        w["cost"] = {"source": "pidfiles: /run/api.pid", "cpu_seconds": 0.05 * (4 if phases[i] == "method" else 1),
                     "successes": 49, "cpu_seconds_per_1k": 1.0 * (4 if phases[i] == "method" else 1), "joules": None,
                     "joules_per_1k": None, "energy_absent": "no RAPL here", "windows": 1, "windows_without_cpu": 0,
                     "notes": []}
    j["phases"][0]["cost"] = j["windows"][0]["cost"] | {"windows": 2}
    j["phases"][1]["cost"] = j["windows"][2]["cost"] | {"windows": 2}
    j["checks"].append({"name": "method: fallback-rate <= 0.05", "phase": "method", "sli": "fallback-rate",
                        "comparison": "<=", "bound": 0.05, "windows": 2, "no_data": 0, "ok": False,
                        "failures": [v for v in j["verdicts"] if v["sli"] == "fallback-rate" and not v["ok"]
                                     and v["value"] is not None],
                        "message": "violated in 2 of 2 window(s)"})
    return j


def test_a_probe_has_a_line_per_series_its_bound_and_the_faults_shaded() -> None:
    view = parse_journal(journal())
    [probe] = view.probes
    assert probe.name == "fallback-rate" and probe.bounds == (("<=", 0.05),)
    figure = probe_chart(view, probe, 0).figure
    lines = {unescape(t.name): t for t in figure.data if t.name != "window failed"}  # names are escaped for plotly
    assert set(lines) == {'{job="a"}', '{job="b"}'}
    assert list(lines['{job="a"}'].x) == [0.5, 1.5, 2.5, 3.5, 4.5] and list(lines['{job="a"}'].y) == [0.0, 0.01, 0.4, 0.2, 0.0]
    assert list(lines['{job="b"}'].y)[3] is None  # no data: a gap, not a zero
    failed = next(t for t in figure.data if t.name == "window failed")
    assert list(failed.x) == [2.5, 3.5]
    assert [(s.x0, s.x1) for s in figure.layout.shapes if s.type == "rect"] == [(2.01, 3.98)]
    assert "bound &lt;= 0.05" in {a.text for a in figure.layout.annotations}
    # A failed check counts windows, not series.
    assert next(c for c in view.checks if c.sli == "fallback-rate").failures == 2


def test_cost_per_thousand_over_time_and_per_phase() -> None:
    view = parse_journal(journal())
    assert view.cost is not None and view.cost.phases == (("baseline", 1.0, None), ("method", 4.0, None))
    chart = cost_chart(view)
    assert chart is not None and "energy not measured: no RAPL here" in chart.title
    [cpu] = [t for t in chart.figure.data]
    assert cpu.name == "CPU-seconds per 1,000" and list(cpu.y) == [1.0, 1.0, 4.0, 4.0, 1.0]
    assert [(s.x0, s.x1) for s in chart.figure.layout.shapes if s.type == "rect"] == [(2.01, 3.98)]
    page = render_html_from_journal(journal())
    assert 'id="chart-probe-0"' in page and 'id="chart-cost"' in page
    assert "<h2>Cost per 1,000 successful predictions</h2>" in page and "pidfiles: /run/api.pid" in page


def test_without_probes_or_cost_there_are_no_such_charts() -> None:
    view = parse_journal(base_journal())
    assert view.probes == () and view.cost is None and cost_chart(view) is None
