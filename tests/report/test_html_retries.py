"""The retry SLIs in the HTML report: amplification per window with the faults shaded, early retries
on a second axis, each phase's own figures in a table (a handcrafted journal)."""

from __future__ import annotations

from html import unescape
from typing import Any

from brownout.report.html import render_html_from_journal
from brownout.report.html_model import parse_journal
from brownout.report.html_retries import parse_retries, retry_chart, retry_table
from tests.report.test_html import journal as base_journal

PHASES = ["baseline", "baseline", "method", "method", "recovery"]


def _verdict(sli: str, window: int | None, value: float | None, bound: float, phase: str) -> dict[str, Any]:
    return {"phase": phase, "window": window, "start": 0.0, "end": 1.0, "sli": sli, "subject": "", "comparison": "<=",
            "bound": bound, "value": value, "ok": value is None or value <= bound, "no_data": value is None,
            "active_faults": [], "note": None, "message": f"{sli} = {value}"}


def journal() -> dict[str, Any]:
    j = base_journal()
    amplification = [1.0, 1.02, 3.4, 2.9, None]  # the last window sent nothing
    early = [0, 0, 12, 7, 0]
    for i, phase in enumerate(PHASES):
        j["verdicts"] += [_verdict("retry_amplification[gpu-worker]", i, amplification[i], 1.5, phase),
                          _verdict("retry_after_violations[gpu-worker]", i, early[i], 0, phase)]
    for p, (amp, count) in zip(j["phases"], [(1.01, 0), (3.15, 19)], strict=True):
        p["verdicts"] = [_verdict("retry_amplification[gpu-worker]", None, amp, 1.5, p["phase"]),
                         _verdict("retry_after_violations[gpu-worker]", None, count, 0, p["phase"])]
    return j


def test_amplification_over_time_with_its_bound_the_faults_shaded_and_early_retries() -> None:
    j = journal()
    [route] = parse_retries(j)
    assert route.route == "gpu-worker" and route.amplification.bound == 1.5 and route.violations.bound == 0
    assert [p.value for p in route.amplification.points] == [1.0, 1.02, 3.4, 2.9, None]
    assert route.phases == (("baseline", 1.01, 0, True), ("method", 3.15, 19, False))
    chart = retry_chart(parse_journal(j), [route])
    assert chart is not None and chart.id == "retries"
    traces = {unescape(t.name): t for t in chart.figure.data}
    line = traces["amplification gpu-worker"]
    assert list(line.x) == [0.5, 1.5, 2.5, 3.5, 4.5] and list(line.y)[:4] == [1.0, 1.02, 3.4, 2.9]
    assert list(line.y)[4] is None  # no data: a gap, not a zero
    assert list(traces["early retries gpu-worker"].y) == [0, 0, 12, 7, 0]
    assert list(traces["window failed"].x) == [2.5, 3.5]
    assert [(s.x0, s.x1) for s in chart.figure.layout.shapes if s.type == "rect"] == [(2.01, 3.98)]  # the fault
    assert "gpu-worker bound &lt;= 1.5" in {a.text for a in chart.figure.layout.annotations}


def test_the_page_has_the_chart_and_the_phase_table() -> None:
    page = render_html_from_journal(journal())
    assert 'id="chart-retries"' in page and "<h2>Retries per phase</h2>" in page
    table = retry_table(parse_retries(journal()))
    assert '<tr class="fail"><td>gpu-worker</td><td>method</td><td class="num">3.15</td><td class="num">19</td>' in table


def test_without_retry_slis_there_is_no_chart_or_table() -> None:
    j = base_journal()
    assert parse_retries(j) == () and retry_chart(parse_journal(j), ()) is None and retry_table(()) == ""
    assert "chart-retries" not in render_html_from_journal(j)
