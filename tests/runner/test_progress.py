"""The run's live view: each window line shows that window's own figures; the clock's total covers the whole run."""

from __future__ import annotations

import io
import re
from pathlib import Path

import yaml

from brownout.experiment.loader import load_experiment
from brownout.experiment.steady import SteadyState
from brownout.liveview import LiveView
from brownout.records import RequestRecord
from brownout.runner.plan import build_plan
from brownout.runner.progress import Progress
from brownout.steady.checker import SteadyStateChecker
from tests.runner.conftest import Stage, brownout_run


def test_each_window_line_shows_its_own_latency_even_when_windows_close_together() -> None:
    # The baseline's windows close together at its end (their grace is the request timeout):
    # the second line must still show the second window's answers, not 0.00 ms.
    out = io.StringIO()
    progress = Progress(LiveView(out, tty=False), total_s=10.0)
    checker = SteadyStateChecker(SteadyState(window=1.0))
    for i in range(50):
        for t, latency in ((i / 50, 0.010), (1 + i / 50, 0.040)):
            record = RequestRecord(scheduled_at=t, latency_s=latency, status=200)
            checker.feed(record)
            progress.record(record)
    for index in (0, 1):
        progress.window(checker.close_window(index, phase="baseline"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "p50 10.00ms p99 10.00ms" in lines[0] and "errors 0 (0.00%)" in lines[0], lines[0]
    assert "p50 40.00ms p99 40.00ms" in lines[1], lines[1]
    assert "window 1 (1s–2s)" in lines[1] and "rate 50.0/s" in lines[1]  # its own 50 requests in its second


def test_a_window_without_answers_shows_no_latency_rather_than_zero() -> None:
    out = io.StringIO()
    progress = Progress(LiveView(out, tty=False), total_s=10.0)
    checker = SteadyStateChecker(SteadyState(window=1.0))
    progress.window(checker.close_window(0, phase="baseline"))
    assert "p50 n/ams p99 n/ams" in out.getvalue()


async def test_the_total_includes_the_recovery_watch_and_the_held_tail(tmp_path: Path) -> None:
    doc = {
        "version": 1, "title": "total", "target": {"url": "http://127.0.0.1:9/"},
        "proxies": [{"admin": "http://127.0.0.1:9"}],
        "load": {"shape": "constant", "rate": 10, "duration": "20s"},
        "steady_state": {"window": "5s", "baseline": "10s"},
        "method": [{"fault": "latency", "route": "api", "at": "5s", "duration": "10s", "params": {"delay_ms": 5}}],
        "recovery": {"within": "15s"},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc))
    plan = build_plan(load_experiment(path, env={}), lease=30, baseline_s=10)
    async with plan.clients():
        # Faults end 15s into the method; recovery is watched for 15s more and one window
        # after that: the method's load is held 15s past its 20s shape.
        assert plan.tail_s == 15
        assert plan.total_s == 10 + 20 + 15
    out = io.StringIO()
    progress = Progress(LiveView(out, tty=False), total_s=plan.total_s)
    progress.view.window(progress.state())
    assert re.search(r"/0:45\]", out.getvalue())


async def test_a_real_run_prints_each_window_once_with_its_own_figures_within_its_total(stage: Stage) -> None:
    # Baseline 2s, method 4s, a fault ending 2s in, recovery watched 2s more plus one 1s window:
    # the load is held 1s past its shape, so the run lasts 7s, not 6s.
    path = stage.experiment(method=[{"fault": "latency", "route": "model", "at": "1s", "duration": "1s",
                                     "params": {"delay_ms": 20}}])
    code, out, err = await brownout_run(str(path))
    assert code == 0, out + err
    lines = [line for line in out.splitlines() if re.match(r"\[\d+:\d\d/\d+:\d\d\] window", line)]
    assert [re.search(r"window (\d+) ", line).group(1) for line in lines] == [str(i) for i in range(7)]  # type: ignore[union-attr]
    for line in lines:
        elapsed, total = (int(m) * 60 + int(s) for m, s in re.findall(r"(\d+):(\d\d)", line.split("]")[0]))
        assert total == 7 and elapsed <= total, line
        assert "p50 n/a" not in line and "p50 0.00ms" not in line, line  # 40 requests/s answered in every window
    # The journal's windows are the same model, with the load generator's in-flight samples in them.
    windows = stage.journal()["windows"]
    assert len(windows) == 7 and all(w["stats"]["sent"] > 0 and w["stats"]["in_flight_max"] >= 1 for w in windows)


def test_a_window_line_names_the_faults_of_its_own_span() -> None:
    out = io.StringIO()
    progress = Progress(LiveView(out, tty=False), total_s=10.0)
    progress.faults = ()  # removed by the time the window's line is printed
    checker = SteadyStateChecker(SteadyState.model_validate({"window": 1, "sla": {"latency_p99_ms": 5}}))
    checker.feed(RequestRecord(scheduled_at=0.5, latency_s=0.0123456, status=200))
    progress.window(checker.close_window(0, phase="method", active_faults=["latency@model"]))
    line = out.getvalue()
    assert "faults   latency@model" in line and "latency_p99_ms 12.35 (bound 5)" in line, line
