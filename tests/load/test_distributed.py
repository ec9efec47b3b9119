"""``--engine locust`` end to end: a Locust master in ``brownout``, worker processes, real upstreams.

Every load here is Brownout as users start it (``brownout load``, ``brownout run``), with
worker processes (``brownout load-worker``, started by it or apart) on 127.0.0.1, against the
real test server (tests/load/servers.py) or the model server behind a real ``brownout proxy``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from brownout.histogram import Histogram
from brownout.windows import WindowAccumulator
from tests.conftest import BROWNOUT, REPO, free_port, serve_app
from tests.runner.conftest import Stage, brownout_run
from tests.runner.model_server import app, write_data

pytestmark = pytest.mark.timeout(90)


def _hits(server: str, tag: str) -> int:
    with urllib.request.urlopen(f"{server}/hits/{tag}", timeout=5) as response:
        return len(json.load(response))


def _workers_of(process: subprocess.Popen[bytes], count: int, timeout: float = 30) -> list[psutil.Process]:
    """The ``brownout load-worker`` children of a brownout process, once ``count`` of them run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [c for c in psutil.Process(process.pid).children() if "load-worker" in " ".join(c.cmdline())]
        if len(children) >= count:
            return children
        time.sleep(0.05)
    raise AssertionError(f"{count} load workers did not start")


def _load(server: str, tag: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*BROWNOUT, "load", f"{server}/ok/{tag}", "--json", "--no-live", "--engine", "locust",
                             *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen[bytes], timeout: float = 60) -> tuple[int, dict[str, Any], str]:
    out, err = process.communicate(timeout=timeout)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = {}
    return process.returncode, doc, err.decode()


def test_two_workers_hold_the_rate_each_half_and_one_set_of_numbers(server: str) -> None:
    # One worker started by brownout, one started apart as users start them on other machines.
    port = free_port()
    master = _load(server, "split", "--workers", "1", "--expect-workers", "1", "--master-bind-port", str(port),
                   "--rate", "400", "--duration", "5s")
    apart = subprocess.Popen([*BROWNOUT, "load-worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        code, doc, err = _finish(master)
        assert apart.wait(30) == 0  # the master told it to quit
    finally:
        if apart.poll() is None:
            apart.kill()
    assert code == 0, err
    seen = _hits(server, "split")
    assert abs(seen - 2000) <= 20, seen  # the upstream saw the target rate, within 1%
    assert doc["sent"] == seen and doc["dropped"] == 0 and doc["engine"] == "locust"
    workers = doc["workers"]
    assert len(workers) == 2 and all(w["lost_at"] is None for w in workers)
    assert all(abs(w["sent"] - 1000) <= 20 for w in workers), [w["sent"] for w in workers]
    assert [w["sent"] for w in doc["windows"]] == [400] * 5  # every window got its 400, split across the two
    # One set of numbers: the total the master merged window by window equals a direct merge of
    # the workers' own totals (their histograms added), percentiles and all.
    direct = Histogram()
    for w in workers:
        direct.merge(WindowAccumulator.from_dict(w["reported"]).histogram)
    assert direct.count == doc["total"]["sent"] == seen
    assert doc["total"]["p99_ms"] == round(direct.percentile(99) * 1000, 3)
    assert doc["total"]["p50_ms"] == round(direct.percentile(50) * 1000, 3)
    assert doc["total"]["max_ms"] == round(direct.max_us / 1000, 3)


def test_heartbeats_flow_while_a_worker_is_saturated(server: str) -> None:
    # Far more than one worker on a shared core can send: its event loop never idles for 4 s.
    # Were gevent starved by it, Locust would call the worker missing (3 s without a heartbeat)
    # and the run would lose its only worker: exit 4.
    code, doc, err = _finish(_load(server, "busy", "--workers", "1", "--rate", "30000", "--duration", "4s",
                                   "--timeout", "1s"))
    assert code == 0, err
    assert "worker lost" not in err
    [worker] = doc["workers"]
    assert worker["lost_at"] is None and worker["reported"] is not None
    assert doc["sent"] > 10_000  # it was busy


def test_a_killed_worker_is_reported_and_the_other_takes_its_share_within_a_window(server: str) -> None:
    process = _load(server, "kill", "--workers", "2", "--rate", "400", "--duration", "6s")
    victim, _ = _workers_of(process, 2)
    deadline = time.monotonic() + 30
    while _hits(server, "kill") < 700 and time.monotonic() < deadline:  # about 2 s into the load
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    code, doc, err = _finish(process)
    assert code == 0, err  # one worker left: min_workers (1) still met
    assert "worker lost" in err and "killed by signal 9" in err
    [lost] = [w for w in doc["workers"] if w["lost_at"] is not None]
    assert 1.0 < lost["lost_at"] < 4.0
    after = [w for w in doc["windows"] if w["start"] >= lost["lost_at"] + 1.0]
    assert after, doc["windows"]
    assert all(abs(w["sent"] - 400) <= 4 for w in after), [w["sent"] for w in after]


@pytest.fixture
async def stage(tmp_path: Path, proxy_factory: Any) -> Any:
    runner, url = await serve_app(app())
    write_data(tmp_path)
    proxy = proxy_factory({"routes": [{"name": "model", "upstream": url}], "fault_ttl": {"default": "1m", "max": "10m"}})
    yield Stage(tmp_path, proxy, url)
    await runner.cleanup()


def _experiment(stage: Stage, **load: Any) -> Path:
    return stage.experiment(
        load={"shape": "constant", "rate": 40, "duration": "2s", "payloads": "payloads.jsonl", "timeout": "2s", **load},
        method=[{"fault": "latency", "route": "model", "at": "0s", "duration": "1s", "params": {"delay_ms": 300}}],
        recovery={"within": "1s"})


async def test_a_library_experiment_gives_the_same_verdict_on_both_engines(stage: Stage) -> None:
    path = _experiment(stage)
    code, out, err = await brownout_run(str(path), "--quiet")
    local = stage.journal()
    assert code == 1, out + err
    code, out, err = await brownout_run(str(path), "--quiet", "--engine", "locust", "--workers", "2")
    assert code == 1, out + err  # deviated on both: the 300 ms fault broke the p99 bound
    journal = stage.journal()
    assert journal["status"]["outcome"] == local["status"]["outcome"] == "deviated"
    assert [c["ok"] for c in journal["checks"]] == [c["ok"] for c in local["checks"]]
    broke = {v["window"] for v in journal["verdicts"] if not v["ok"] and v["sli"] == "latency_p99_ms"}
    assert broke == {v["window"] for v in local["verdicts"] if not v["ok"] and v["sli"] == "latency_p99_ms"}
    # The same requests in the same windows: 40 a window (to a few, as a phase starts some ms
    # late on a busy machine and its first sends land in the window before), from the two workers evenly.
    sent, local_sent = [w["stats"]["sent"] for w in journal["windows"]], [w["stats"]["sent"] for w in local["windows"]]
    assert len(sent) == len(local_sent) and all(abs(n - 40) <= 3 for n in sent + local_sent), (sent, local_sent)
    workers = journal["extra"]["load"]["workers"]
    assert len(workers) == 2 and all(abs(w["share"] - 0.5) < 0.02 for w in workers), workers
    assert all(p["quality"]["probes"] > 0 for p in journal["phases"])  # golden probes ran, on the master


async def test_losing_every_worker_stops_the_run_with_exit_4_and_no_fault_left(stage: Stage) -> None:
    path = _experiment(stage, duration="20s")
    process = await asyncio.create_subprocess_exec(
        *BROWNOUT, "run", str(path), "--quiet", "--engine", "locust", "--workers", "2", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not await _faults(stage):  # the method has started: a fault is on
            await asyncio.sleep(0.1)
        assert await _faults(stage), "the fault never went on"
        for worker in psutil.Process(process.pid).children():
            if "load-worker" in " ".join(worker.cmdline()):
                worker.send_signal(signal.SIGKILL)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 4, out.decode() + err.decode()
    assert await _faults(stage) == []
    journal = stage.journal()
    assert journal["status"]["outcome"] == "could_not_run" and "min_workers" in journal["status"]["reason"]
    assert len([e for e in journal["timeline"] if e["event"] == "worker_lost"]) == 2


async def _faults(stage: Stage) -> list[Any]:
    def get() -> list[Any]:
        with urllib.request.urlopen(stage.proxy.admin + "/faults", timeout=5) as response:
            return json.load(response)
    return await asyncio.to_thread(get)


def test_engine_flags_are_checked_before_anything_runs(server: str) -> None:
    for flags, message in ((["--workers", "2"], "--workers: only with --engine locust"),
                           (["--engine", "locust", "--workers", "1", "--min-workers", "2"], "--min-workers: must be <="),
                           (["--engine", "locust", "--max-requests", "5"], "--max-requests: not with --engine locust")):
        result = subprocess.run([*BROWNOUT, "load", f"{server}/ok/flags", "--rate", "10", "--duration", "1s", *flags],
                                cwd=REPO, capture_output=True, text=True, timeout=30)
        assert result.returncode == 3 and message in result.stderr, (flags, result.stderr)
    assert _hits(server, "flags") == 0


def test_a_worker_without_a_master_gives_up_with_exit_4() -> None:
    result = subprocess.run([*BROWNOUT, "load-worker", "--master-host", "127.0.0.1", "--master-port", "1",
                             "--connect-timeout", "1s"], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ})
    assert result.returncode == 4 and "no Locust master answered" in result.stderr, result.stderr
