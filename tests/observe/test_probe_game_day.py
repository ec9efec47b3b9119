"""The library's PromQL game day (``obs-fallback-rate``) with a real Prometheus scraping the real
demo behind the real proxy, run by ``brownout run`` as users run it: the probe catches the
feature store's fault (exit 1, the verdict names it), holds without it (exit 0), and a dead
Prometheus stops the run at preflight (exit 4)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from brownout.demo.game_day import GameDay, game_day
from brownout.demo.web import free_port
from tests.conftest import BROWNOUT, REPO
from tests.observe.prometheus_fixture import PrometheusFactory, PrometheusServer

GAME_DAY = REPO / "experiments" / "obs-fallback-rate.yaml"


@pytest.fixture
async def day(demo_cache: Path, bundle: Any) -> AsyncIterator[GameDay]:
    async with game_day(demo_cache) as d:  # real processes, as brownout demo runs them
        yield d


@pytest.fixture
async def prometheus(day: GameDay, prometheus_factory: PrometheusFactory) -> PrometheusServer:
    prom = await prometheus_factory({"model-api": day.model_api_url + "/metrics",
                                     "gpu-worker": day.backends.worker_url + "/metrics",
                                     "feature-store": day.backends.feature_store_url + "/metrics",
                                     "brownout": day.admin_url + "/metrics"})
    await prom.wait_for_data("demo_model_api_predictions_total")
    return prom


async def run(day: GameDay, prometheus_url: str, reports: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    """The game day, halved, at a lower rate and without its load SLA: on a shared 2-CPU machine the
    demo's GPU worker stalls now and then (504s), and the probes are on trial here, not the demo."""
    env = {**os.environ, **day.env(), "BROWNOUT_PROMETHEUS": prometheus_url, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        *BROWNOUT, "run", str(GAME_DAY), "--time-scale", "0.5", "--quiet", "--report-dir", str(reports),
        "--set", "load.rate=15", "--set", "steady_state.sla={}", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 180)
    journal_path = reports / "journal.json"
    journal = json.loads(journal_path.read_text()) if journal_path.exists() else {}
    assert process.returncode is not None
    return process.returncode, out.decode(), journal


async def test_the_probe_catches_fallbacks_the_clients_cannot_see(day: GameDay, prometheus: PrometheusServer,
                                                                  tmp_path: Path) -> None:
    code, out, journal = await run(day, prometheus.url, tmp_path / "reports")
    assert code == 1, out
    failed = [v for v in journal["verdicts"] if not v["ok"]]
    probe = [v for v in failed if v["sli"] == "fallback-rate"]
    assert probe, out
    # The windows it failed are those of the fault: the verdict names it, the bound and the value.
    during = [v for v in probe if v["active_faults"] == ["error@feature-store"]]
    assert len(during) >= 2 and max(v["value"] for v in during) > 0.3, probe
    assert "fallback-rate = " in during[0]["message"] and "bound <= 0.05" in during[0]["message"]
    assert "FAIL method: fallback-rate <= 0.05" in out
    # The clients saw 200s: the model API hid the fallbacks from them.
    statuses = [w["stats"]["statuses"] for w in journal["windows"] if w["active_faults"]]
    assert sum(s.get("2xx", 0) for s in statuses) >= 0.8 * sum(sum(s.values()) for s in statuses), statuses
    # Every window judged both probes (the queue stayed short), the baseline held.
    baseline = [v for v in journal["verdicts"] if v["phase"] == "baseline" and v["sli"] in ("fallback-rate",
                                                                                          "gpu-queue-depth")]
    assert baseline and all(v["ok"] and v["value"] is not None for v in baseline), baseline
    queue = [v for v in journal["verdicts"] if v["sli"] == "gpu-queue-depth"]
    assert len({v["window"] for v in queue}) == len(journal["windows"]) and all(v["ok"] for v in queue)
    junit = (tmp_path / "reports" / "junit.xml").read_text()
    assert 'name="fallback-rate &lt;= 0.05"' in junit and "SLAViolation" in junit
    html = (tmp_path / "reports" / "report.html").read_text()
    assert "PromQL probe fallback-rate" in html and "PromQL probe gpu-queue-depth" in html


async def test_without_the_fault_the_probes_hold(day: GameDay, prometheus: PrometheusServer, tmp_path: Path) -> None:
    code, out, journal = await run(day, prometheus.url, tmp_path / "reports", "--set", "method=[]")
    assert code == 0, out
    probes = [v for v in journal["verdicts"] if v["sli"] in ("fallback-rate", "gpu-queue-depth")]
    assert probes and all(v["ok"] and v["value"] is not None for v in probes)
    assert {v["phase"] for v in probes} == {"baseline", "method"}
    # A query Prometheus rejects stops the run at preflight, quoting Prometheus.
    code, out, _ = await run(day, prometheus.url, tmp_path / "bad", "--set", "steady_state.probes[1].query=max(")
    assert code == 4 and "probe 'gpu-queue-depth'" in out and "bad_data" in out, out


async def test_a_dead_prometheus_fails_preflight(day: GameDay, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, journal = await run(day, dead, tmp_path / "reports")
    assert code == 4, out
    assert f"probe 'fallback-rate': Prometheus at {dead} is unreachable" in out
    assert journal["status"]["outcome"] == "could_not_run" and journal["windows"] == []


def test_brownout_demo_brings_its_own_prometheus_and_measures_its_cost(tmp_path: Path, demo_cache: Path) -> None:
    reports = tmp_path / "reports"
    result = subprocess.run(
        [*BROWNOUT, "demo", "--experiment", "obs-fallback-rate", "--time-scale", "0.5", "--quiet",
         "--report-dir", str(reports)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "BROWNOUT_DEMO_CACHE": str(demo_cache)})
    out = result.stdout + result.stderr
    # 1: the probe caught the fault; 2: a busy machine broke the baseline's latency first.
    assert result.returncode in (1, 2), out
    assert re.search(r"Prometheus http://127\.0\.0\.1:\d+\)", out), out
    journal = json.loads((reports / "journal.json").read_text())
    baseline = [v for v in journal["verdicts"] if v["phase"] == "baseline" and v["sli"] == "fallback-rate"]
    assert baseline and all(v["value"] is not None for v in baseline)  # the demo's Prometheus answered
    if result.returncode == 1:
        assert any(v["sli"] == "fallback-rate" and not v["ok"] for v in journal["verdicts"]), out
    # Without a cost key, the demo's own processes are measured.
    cost = journal["phases"][0]["cost"]
    assert cost["source"].startswith("pidfiles: ") and "model-api.pid" in cost["source"]
    assert cost["cpu_seconds"] > 0 and cost["cpu_seconds_per_1k"] > 0
    assert "cost per 1,000 successful predictions" in result.stdout
