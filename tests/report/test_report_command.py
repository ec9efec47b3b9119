"""`brownout report` on the journal of a real run: a model server behind a real proxy, a latency fault."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.report.conftest import brownout_report
from tests.runner.conftest import Stage, brownout_run


def _figures(page: str) -> list[dict[str, Any]]:
    """The figure JSON of every chart (Plotly.newPlot(id, data, layout, config))."""
    figures = []
    decoder = json.JSONDecoder()
    for match in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, end + page[end:].index("{"))
        figures.append({"data": data, "layout": layout})
    return figures


async def test_report_renders_the_journal_of_a_real_run(stage: Stage) -> None:
    path = stage.experiment(title="Model slows <down>",
                            method=[{"fault": "latency", "route": "model", "at": "1s", "duration": "2s",
                                     "params": {"delay_ms": 300}}])
    code, out, err = await brownout_run(str(path), "--quiet")
    assert code == 1, out + err
    reports = stage.folder / "reports"
    written_by_run = (reports / "report.html").read_text()  # `brownout run` writes it too
    (reports / "report.html").unlink()

    result = brownout_report(reports / "journal.json")  # default output: next to the journal
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(reports / "report.html")
    page = (reports / "report.html").read_text()
    assert page == written_by_run  # one rendering path: from the run's report or from its journal file

    assert "<title>Model slows &lt;down&gt; – brownout report</title>" in page
    assert re.search(r"\* plotly\.js v\d", page) and not re.search(r"<script[^>]+src=", page)
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)  # nothing outside the inline scripts loads
    assert not re.search(r"\b(src|href)=", markup), re.findall(r"\b(?:src|href)=\S+", markup)
    assert "<h2>Verdicts</h2>" in page and '<tr class="fail"><td>method: latency_p99_ms &lt;= 250' in page
    assert "latency@model" in page[page.index("<h2>Injections</h2>"):]

    [injection] = stage.journal()["injections"]
    figures = _figures(page)
    assert len(figures) == 4  # latency, errors, throughput, golden agreement: the fault window shaded in each
    for figure in figures:
        rects = [s for s in figure["layout"]["shapes"] if s["type"] == "rect"]
        assert [(r["x0"], r["x1"]) for r in rects] == [(injection["started_at"], injection["ended_at"])]
        assert "latency@model" in {a["text"] for a in figure["layout"]["annotations"]}
    p99 = next(t for t in figures[0]["data"] if t["name"] == "p99")
    assert max(p99["y"]) > 250  # the fault shows in the curve


async def test_output_flag_and_missing_or_invalid_journal(tmp_path: Path) -> None:
    missing = brownout_report(tmp_path / "nope.json")
    assert missing.returncode == 3 and "nope.json" in missing.stderr

    (tmp_path / "old.json").write_text(json.dumps({"schema_version": 0}))
    assert brownout_report(tmp_path / "old.json").returncode == 3

    (tmp_path / "bad.json").write_text(json.dumps({"schema_version": 1, "windows": {"a": 1}}))
    bad = brownout_report(tmp_path / "bad.json")
    assert bad.returncode == 3 and "bad.json" in bad.stderr and "windows" in bad.stderr

    (tmp_path / "run-7.json").write_text(json.dumps({"schema_version": 1, "experiment": {"title": "bare"}}))
    default = brownout_report(tmp_path / "run-7.json")
    assert default.returncode == 0 and (tmp_path / "run-7.html").is_file()
    chosen = brownout_report(tmp_path / "run-7.json", "-o", tmp_path / "out" / "r.html")
    assert chosen.returncode == 0 and "<h1>bare</h1>" in (tmp_path / "out" / "r.html").read_text()
