"""The HTML report rendered from handcrafted journals: fast, no run needed."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from brownout.report.html import render_html_from_journal, write_html_from_journal
from brownout.report.html_charts import latency_chart, quality_chart, stress_chart
from brownout.report.html_model import parse_journal
from brownout.report.journal import JOURNAL_SCHEMA_VERSION
from faults.errors import InvalidInput

PLOTLY_BUNDLE = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")


def _window(index: int, phase: str, p99: float, faults: list[str], ok: bool = True, psi: float | None = None) -> dict[str, Any]:
    return {
        "index": index, "phase": phase, "start": float(index), "end": index + 1.0, "active_faults": faults, "ok": ok,
        "stats": {"index": index, "start": float(index), "end": index + 1.0, "sent": 50, "errors": 1, "dropped": 0,
                  "statuses": {"2xx": 49, "5xx": 1}, "error_rate": 0.02, "dropped_rate": 0.0, "throughput_rps": 50.0,
                  "p50_ms": p99 / 3, "p95_ms": p99 / 2, "p99_ms": p99, "max_ms": p99, "mean_ms": p99 / 3},
        "quality": {"responses": 50, "invalid": 0, "valid_rate": 1.0, "problems": {}, "scores": 50, "probes": 5,
                    "agreement": 1.0 if ok else 0.8, "psi": psi, "precision": None, "recall": None, "brier": None},
        "verdicts": [], "abort": [],
    }


def _verdict(phase: str, window: int, value: float, ok: bool) -> dict[str, Any]:
    return {"phase": phase, "window": window, "start": float(window), "end": window + 1.0, "sli": "latency_p99_ms",
            "comparison": "<=", "bound": 250.0, "value": value, "ok": ok, "active_faults": [],
            "message": f"window {window}: latency_p99_ms = {value:g}"}


def journal() -> dict[str, Any]:
    windows = [_window(0, "baseline", 40, []), _window(1, "baseline", 42, []),
               _window(2, "method", 610, ["latency@feature-store"], ok=False, psi=0.31),
               _window(3, "method", 55, ["latency@feature-store"], psi=0.05), _window(4, "recovery", 41, [], psi=0.01)]
    failed = _verdict("method", 2, 610, False)
    return {
        "schema_version": JOURNAL_SCHEMA_VERSION, "brownout_version": "0.1.0",
        "status": {"outcome": "deviated", "exit_code": 1, "reason": "window 2: latency_p99_ms = 610 > 250"},
        "experiment": {"source": "experiments/<holiday>.yaml", "title": "Holiday spike <script>alert(1)</script>",
                       "seed": 7, "definition": None},
        "started_at": "2026-11-29T10:00:00+00:00", "ended_at": "2026-11-29T10:00:05+00:00", "duration_s": 5.0,
        "timeline": [{"t": 0.0, "event": "preflight_passed", "detail": {}},
                     {"t": 2.0, "event": "method_started", "detail": {"faults": 1, "actions": 1}}],
        "injections": [
            {"id": "run-1-step0", "step": 0, "kind": "fault", "name": "latency", "target": "feature-store",
             "proxy": "http://127.0.0.1:8475", "planned_at": 2.0, "planned_until": 4.0, "started_at": 2.01,
             "ended_at": 3.98, "params": {"delay_ms": 400}, "removed": True, "error": None},
            {"id": "run-1-step1", "step": 1, "kind": "action", "name": "kill", "target": "gpu-worker", "proxy": None,
             "planned_at": 3.5, "planned_until": None, "started_at": 3.5, "ended_at": None, "params": {},
             "removed": False, "error": None},
        ],
        "windows": windows,
        "verdicts": [_verdict("baseline", 0, 40, True), _verdict("baseline", 1, 42, True), failed,
                     _verdict("method", 3, 55, True)],
        "phases": [{"phase": "baseline", "windows": 2, "held": True, "stats": windows[0]["stats"] | {"start": 0.0, "end": 2.0},
                    "quality": windows[0]["quality"]},
                   {"phase": "method", "windows": 2, "held": False, "stats": windows[2]["stats"] | {"start": 2.0, "end": 4.0},
                    "quality": windows[2]["quality"]}],
        "checks": [
            {"name": "baseline: latency_p99_ms <= 250", "phase": "baseline", "sli": "latency_p99_ms", "comparison": "<=",
             "bound": 250.0, "windows": 2, "ok": True, "failures": [], "message": "held in 2 window(s)"},
            {"name": "method: latency_p99_ms <= 250", "phase": "method", "sli": "latency_p99_ms", "comparison": "<=",
             "bound": 250.0, "windows": 2, "ok": False, "failures": [failed], "message": "violated in 1 of 2 window(s)"},
        ],
        "recovery": {"faults_ended_at": 4.0, "within": 30.0, "deadline": 34.0, "recovered": True, "time_to_recover_s": 0.5},
        "extra": {"stress": {
            "without_faults": {"held_rate": 200.0, "broke_rate": 300.0, "breach": "p99", "describe": "held up to 200 rps",
                               "steps": [{"rate": 100.0, "held": True, "p99_ms": 30.0, "error_rate": 0.0, "breach": None},
                                         {"rate": 200.0, "held": True, "p99_ms": 90.0, "error_rate": 0.0, "breach": None},
                                         {"rate": 300.0, "held": False, "p99_ms": 900.0, "error_rate": 0.1, "breach": "p99"}]},
            "with_faults": {"held_rate": 100.0, "broke_rate": 200.0, "breach": "p99", "describe": "held up to 100 rps",
                            "steps": [{"rate": 100.0, "held": True, "p99_ms": 130.0, "error_rate": 0.0, "breach": None},
                                      {"rate": 200.0, "held": False, "p99_ms": 700.0, "error_rate": 0.0, "breach": "p99"}]},
            "capacity_under_fault": 0.5}},
    }


def test_page_has_header_verdicts_injections_and_escapes_text() -> None:
    page = render_html_from_journal(journal())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "Holiday spike &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page and "experiments/&lt;holiday&gt;.yaml" in page
    assert "deviated (exit code 1)" in page and "seed" in page
    verdicts = page[page.index("<h2>Verdicts</h2>"):page.index("<h2>Phases</h2>")]
    assert "1 of 2 checks passed" in verdicts
    failed_row = re.search(r'<tr class="fail">(.*?)</tr>', verdicts)
    assert failed_row and "method: latency_p99_ms &lt;= 250" in failed_row.group(1) and ">610<" in failed_row.group(1)
    injections = page[page.index("<h2>Injections</h2>"):]
    assert "latency@feature-store" in injections and "kill@gpu-worker" in injections
    assert "2.01s – 3.98s" in injections and "removed" in injections
    assert "held up to 100 rps" in page and "50.00% of the fault-free breaking point" in page
    assert "SLA held again 0.5s after the faults ended" in page


def test_page_is_self_contained_with_one_inline_plotly_bundle() -> None:
    page = render_html_from_journal(journal())
    assert len(PLOTLY_BUNDLE.findall(page)) == 1
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=", page)
    assert page.count("Plotly.newPlot(") == 5  # latency, errors, throughput, quality, stress
    for chart in ("latency", "errors", "throughput", "quality", "stress"):
        assert f'id="chart-{chart}"' in page


def test_latency_chart_shades_fault_windows_and_marks_phases() -> None:
    figure = latency_chart(parse_journal(journal())).figure
    rects = [s for s in figure.layout.shapes if s.type == "rect"]
    assert [(r.x0, r.x1) for r in rects] == [(2.01, 3.98)]
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert {line.x0 for line in lines} >= {0.0, 2.0, 4.0, 3.5}  # phase starts, the kill action
    texts = {a.text for a in figure.layout.annotations}
    assert {"latency@feature-store", "kill@gpu-worker", "baseline", "method", "recovery", "SLA p99 &lt;= 250"} <= texts
    p99 = next(t for t in figure.data if t.name == "p99")
    assert list(p99.x) == [0.5, 1.5, 2.5, 3.5, 4.5] and list(p99.y) == [40, 42, 610, 55, 41]
    failed = next(t for t in figure.data if t.name == "window failed")
    assert list(failed.x) == [2.5]


def test_quality_and_stress_charts_follow_the_journal() -> None:
    view = parse_journal(journal())
    quality = quality_chart(view)
    assert quality is not None and {t.name for t in quality.figure.data} == {"golden agreement", "PSI (drift)"}
    stress = stress_chart(view)
    assert stress is not None
    assert {t.name for t in stress.figure.data} == {"without faults", "with faults"}
    with_faults = next(t for t in stress.figure.data if t.name == "with faults" and t.xaxis == "x")
    assert list(with_faults.x) == [100.0, 200.0] and list(with_faults.marker.symbol) == ["circle", "x"]

    bare = journal()
    for w in bare["windows"]:
        w["quality"] = {}
    bare["extra"] = {}
    view = parse_journal(bare)
    assert quality_chart(view) is None and stress_chart(view) is None


def test_a_bare_journal_renders_without_charts() -> None:
    page = render_html_from_journal({"schema_version": JOURNAL_SCHEMA_VERSION,
                                     "status": {"outcome": "could_not_run", "exit_code": 4, "reason": "proxy unreachable"}})
    assert "COULD NOT RUN" in page and "proxy unreachable" in page and "No checks were evaluated" in page
    assert "Nothing was injected" in page and "Plotly.newPlot" not in page


def test_a_journal_of_the_wrong_shape_names_the_field() -> None:
    broken = copy.deepcopy(journal())
    broken["windows"][1]["stats"] = [1, 2]
    with pytest.raises(InvalidInput) as info:
        render_html_from_journal(broken)
    assert info.value.field == "windows[1].stats"


def test_write_is_atomic_and_deterministic(tmp_path: Path) -> None:
    first = write_html_from_journal(journal(), tmp_path / "a" / "report.html")
    second = write_html_from_journal(json.loads(json.dumps(journal())), tmp_path / "b.html")
    assert first.read_text() == second.read_text()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["report.html"]
