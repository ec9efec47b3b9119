"""``brownout run`` end to end: a real proxy, a real model server, the runner as users start it."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import xml.dom.minidom
from typing import Any

import aiohttp

from tests.runner.conftest import Stage, brownout_run


async def _faults_on(stage: Stage) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as client, client.get(stage.proxy.admin + "/faults") as response:
        return await response.json()


async def test_held_hypothesis_exits_0_and_writes_journal_and_junit(stage: Stage) -> None:
    path = stage.experiment(method=[{"fault": "latency", "route": "model", "at": "1s", "duration": "1s",
                                     "params": {"delay_ms": 20}}])
    code, out, err = await brownout_run(str(path))
    assert code == 0, out + err
    journal = stage.journal()
    assert journal["status"]["outcome"] == "held" and journal["status"]["exit_code"] == 0
    phases = {p["phase"] for p in journal["phases"]}
    assert phases == {"baseline", "method", "recovery"}
    [injection] = journal["injections"]
    assert injection["name"] == "latency" and injection["removed"] is True
    junit = xml.dom.minidom.parse(str(stage.folder / "reports" / "junit.xml"))
    assert junit.getElementsByTagName("testcase") and not junit.getElementsByTagName("failure")
    assert "HELD" in out
    assert await _faults_on(stage) == []


async def test_latency_that_breaks_the_sla_exits_1_naming_window_and_fault(stage: Stage) -> None:
    path = stage.experiment(method=[{"fault": "latency", "route": "model", "at": "1s", "duration": "2s",
                                     "params": {"delay_ms": 300}}])
    code, out, err = await brownout_run(str(path))
    assert code == 1, out + err
    journal = stage.journal()
    failed = [v for v in journal["verdicts"] if not v["ok"] and v["sli"] == "latency_p99_ms" and v["phase"] == "method"]
    assert failed, journal["verdicts"]
    during = [v for v in failed if v["active_faults"] == ["latency@model"]]
    assert during, failed  # the windows that broke name the fault active then
    assert f"window {during[0]['window']}" in during[0]["message"] and "latency@model" in during[0]["message"]
    junit = xml.dom.minidom.parse(str(stage.folder / "reports" / "junit.xml"))
    assert junit.getElementsByTagName("failure")


async def test_corrupted_scores_with_status_200_exit_1_through_golden_agreement(stage: Stage) -> None:
    path = stage.experiment(method=[{"fault": "corrupt", "route": "model", "at": "1s", "duration": "2s",
                                     "params": {"ops": [{"op": "scale", "path": "$.score", "factor": 0.5}]}}])
    code, out, err = await brownout_run(str(path))
    assert code == 1, out + err
    journal = stage.journal()
    assert all(w["stats"]["error_rate"] in (0, 0.0, None) for w in journal["windows"])  # every status stayed 200
    failed = [v for v in journal["verdicts"] if not v["ok"]]
    assert {v["sli"] for v in failed} & {"golden_agreement", "psi"}, failed
    assert any("corrupt@model" in v["active_faults"] for v in failed)


async def test_abort_when_exits_2_and_leaves_no_fault(stage: Stage) -> None:
    path = stage.experiment(
        load={"shape": "constant", "rate": 40, "duration": "20s", "payloads": "payloads.jsonl", "timeout": "2s"},
        method=[{"fault": "error", "route": "model", "at": "1s", "params": {"status": 503}}],
        abort_when={"error_rate": 0.5},
    )
    started = time.monotonic()
    code, out, err = await brownout_run(str(path))
    assert code == 2, out + err
    assert time.monotonic() - started < 15  # stopped at once, not after 20 s of load
    assert await _faults_on(stage) == []
    assert stage.journal()["status"]["outcome"] == "aborted"


async def test_invalid_file_exits_3_with_positions_and_runs_nothing(stage: Stage) -> None:
    path = stage.experiment(method=[{"fault": "latency", "route": "model", "params": {"delay_ms": -1}}])
    code, out, err = await brownout_run(str(path))
    assert code == 3
    assert f"{path}:" in err and "method[0].params.delay_ms: must be >= 0" in err
    assert not (stage.folder / "reports").exists()


async def test_unreachable_proxy_exits_4(stage: Stage, unused_port: int) -> None:
    path = stage.experiment(proxies=[{"admin": f"http://127.0.0.1:{unused_port}"}],
                            method=[{"fault": "latency", "route": "model", "params": {"delay_ms": 1}}])
    code, out, err = await brownout_run(str(path))
    assert code == 4, out + err
    assert "unreachable" in (out + err)


async def test_sigint_mid_run_exits_130_and_removes_its_faults(stage: Stage) -> None:
    path = stage.experiment(
        load={"shape": "constant", "rate": 20, "duration": "30s", "payloads": "payloads.jsonl", "timeout": "2s"},
        method=[{"fault": "latency", "route": "model", "at": "0s", "params": {"delay_ms": 5}}],
    )
    code, out, err = await brownout_run(str(path), interrupt_after=4.0)
    assert code == 130, out + err
    assert await _faults_on(stage) == []
    assert stage.journal()["status"]["outcome"] == "interrupted"


async def test_sigkilled_runner_leaves_no_fault_after_its_lease(stage: Stage) -> None:
    path = stage.experiment(
        load={"shape": "constant", "rate": 20, "duration": "30s", "payloads": "payloads.jsonl", "timeout": "2s"},
        method=[{"fault": "latency", "route": "model", "at": "0s", "params": {"delay_ms": 5}}],
    )

    async def injected() -> bool:
        return bool(await _faults_on(stage))

    # Killed once its fault is on (not after a fixed time: a busy machine may start the run late).
    code, _, _ = await brownout_run(str(path), "--lease", "3s", interrupt_when=injected, sig=signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert [f["type"] for f in await _faults_on(stage)] == ["latency"]  # left behind by the killed runner...
    await asyncio.sleep(3.5)
    assert await _faults_on(stage) == []  # ...until its lease ran out


async def test_journal_is_machine_readable(stage: Stage) -> None:
    path = stage.experiment()
    code, out, err = await brownout_run(str(path), "--quiet")
    assert code == 0, out + err
    journal = json.loads((stage.folder / "reports" / "journal.json").read_text())
    for key in ("schema_version", "status", "experiment", "timeline", "windows", "verdicts", "injections", "checks"):
        assert key in journal
    assert journal["experiment"]["title"] == "test experiment"


async def test_an_internal_error_still_cleans_up_and_writes_the_reports(stage: Stage, monkeypatch: Any) -> None:
    """A bug in the runner (here: the verdict raises) is exit 4 with the journal and JUnit written,
    and no fault left behind, as for any run that could not complete."""
    from brownout.experiment import load_experiment
    from brownout.report import write_reports
    from brownout.runner import engine

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug in the runner")

    monkeypatch.setattr(engine, "decide_outcome", broken)
    path = stage.experiment(method=[{"fault": "latency", "route": "model", "at": "0.5s", "params": {"delay_ms": 5}}])
    report = await engine.run_experiment(load_experiment(path))
    assert report.exit_code == 4 and report.reason == "internal error: RuntimeError: a bug in the runner"
    paths = write_reports(report, stage.folder / "reports")
    journal = json.loads((stage.folder / "reports" / "journal.json").read_text())
    assert journal["status"]["exit_code"] == 4 and paths
    assert all(i["removed"] for i in journal["injections"]) and journal["injections"]
    assert await _faults_on(stage) == []
