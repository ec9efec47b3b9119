"""Record real traffic through a proxy, then replay it in an experiment and judge replay agreement.

The model server is deterministic, so with no fault every replayed answer agrees with the
recorded one (1.0); a fault that changes scores while every status stays 200 drives the
agreement under its bound, and the reports say which requests disagreed and how.
"""

from __future__ import annotations

import asyncio
import json
import random
import xml.dom.minidom
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from brownout.experiment import load_experiment
from brownout.exit_codes import Outcome
from brownout.runner.context import RunOptions
from brownout.runner.engine import run_experiment
from tests.conftest import ProxyProcess, serve_app
from tests.runner.conftest import brownout_run
from tests.runner.model_server import app

REPLAY = {"score": "$.score", "tolerance": 0.000001, "ignore": ["$.model_version"], "min_agreement": 0.99}


@dataclass
class Recorded:
    folder: Path
    proxy: ProxyProcess
    recording: Path

    def experiment(self, load: dict[str, Any], method: list[dict[str, Any]] | None = None) -> Path:
        doc = {
            "version": 1, "title": "replay", "seed": 3,
            "target": {"url": self.proxy.url("model", "/predict")},
            "proxies": [{"admin": self.proxy.admin}],
            "load": {**load, "payloads": str(self.recording), "timeout": "2s"},
            "steady_state": {"window": "1s", "baseline": "1s",
                             "sla": {"error_rate": 0.0}, "predictions": {"replay": REPLAY}},
            "method": method or [], "recovery": {"within": "1s"},
            "report": {"dir": str(self.folder / "reports")},
        }
        path = self.folder / "replay.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


@pytest.fixture
async def recorded(tmp_path: Path, proxy_factory: Any) -> AsyncIterator[Recorded]:
    """~3 s of real traffic recorded through the proxy's admin API, at uneven intervals."""
    runner, url = await serve_app(app())
    proxy = proxy_factory({"record": {"dir": str(tmp_path / "sidecar")}, "fault_ttl": {"default": "1m", "max": "10m"},
                           "routes": [{"name": "model", "upstream": url}]})
    rng = random.Random(5)
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.admin + "/recordings", json={"route": "model"}) as r:
            rid = (await r.json())["id"]
        for i in range(80):
            async with session.post(proxy.url("model", "/predict"), json={"id": i, "x": rng.uniform(-4, 4)}) as r:
                assert r.status == 200
            await asyncio.sleep(rng.choice([0.005, 0.02, 0.06]))
        async with session.patch(f"{proxy.admin}/recordings/{rid}", json={"end": True}) as r:
            assert r.status == 200
        async with session.get(f"{proxy.admin}/recordings/{rid}/data") as r:
            data = await r.read()
    recording = tmp_path / "recording.jsonl"
    recording.write_bytes(data)
    assert len(data.splitlines()) == 80
    yield Recorded(tmp_path, proxy, recording)
    await runner.cleanup()


@pytest.mark.parametrize("load", [{"shape": "replay", "speed": 2}, {"shape": "constant", "rate": 40, "duration": "2s"}],
                         ids=["replay-at-speed-2", "recording-at-a-constant-rate"])
async def test_without_a_fault_every_replayed_answer_agrees(recorded: Recorded, load: dict[str, Any]) -> None:
    experiment = load_experiment(recorded.experiment(load))
    report = await run_experiment(experiment, RunOptions())
    assert report.outcome is Outcome.HELD, report.reason
    compared = [w.quality for w in report.windows if w.quality.replay_compared]
    assert sum(q.replay_compared for q in compared) >= 60
    assert all(q.replay_agreement == 1.0 and not q.replay_disagreements for q in compared)
    check = next(c for c in report.checks if c.sli == "replay_agreement" and c.phase == "method")
    assert check.ok and check.judged


async def test_scores_changed_under_status_200_fail_replay_agreement_in_every_report(recorded: Recorded) -> None:
    fault = {"fault": "score_corruption", "route": "model", "at": "0s", "params": {"mode": "constant", "value": 0.5}}
    path = recorded.experiment({"shape": "replay", "speed": 2}, [fault])
    code, out, err = await brownout_run(str(path))
    assert code == 1, out + err
    journal = json.loads((recorded.folder / "reports" / "journal.json").read_text())
    assert all(w["stats"]["error_rate"] in (0, 0.0, None) for w in journal["windows"])  # every status stayed 200
    failed = [v for v in journal["verdicts"] if not v["ok"]]
    assert failed and {v["sli"] for v in failed} == {"replay_agreement"}
    assert all("score_corruption@model" in v["active_faults"] for v in failed)
    method = next(p for p in journal["phases"] if p["phase"] == "method")["quality"]["replay"]
    assert method["agreement"] < 0.99 and set(method["disagreements"]) == {"score"}
    assert method["examples"] and method["examples"][0].startswith("line ") and "recorded" in method["examples"][0]
    baseline = next(p for p in journal["phases"] if p["phase"] == "baseline")["quality"]["replay"]
    assert baseline["agreement"] == 1.0 and baseline["compared"] > 0
    assert "replay, method:" in out and "score: $.score = 0.5, recorded" in out  # the summary
    junit = xml.dom.minidom.parse(str(recorded.folder / "reports" / "junit.xml"))
    failure = junit.getElementsByTagName("failure")[0]
    assert "replay_agreement" in failure.getAttribute("message") and "line " in failure.firstChild.data
    html = (recorded.folder / "reports" / "report.html").read_text()
    assert "Replay agreement" in html and "score: $.score = 0.5" in html


async def test_replay_agreement_needs_a_recording_with_answers(recorded: Recorded) -> None:
    plain = recorded.folder / "plain.jsonl"
    plain.write_text('{"body": {"id": 1, "x": 0.5}}\n')
    path = recorded.experiment({"shape": "constant", "rate": 5, "duration": "1s"})
    doc = yaml.safe_load(path.read_text())
    doc["load"]["payloads"] = str(plain)
    path.write_text(yaml.safe_dump(doc))
    code, out, err = await brownout_run(str(path))
    assert code == 3 and "steady_state.predictions.replay" in err and "no recorded answer" in err
