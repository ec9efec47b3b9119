"""``brownout demo --record FILE``: the demo's own traffic, recorded through its proxy, replayable."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from brownout.load.replay import load_recorded, replay_shape
from proxy.recording import read_lines
from tests.conftest import BROWNOUT, REPO


def test_demo_records_what_its_clients_sent_and_got(tmp_path: Path, demo_cache: Path) -> None:
    out, reports = tmp_path / "demo.jsonl", tmp_path / "reports"
    result = subprocess.run(
        [*BROWNOUT, "demo", "--experiment", "record-demo-traffic", "--time-scale", "0.3", "--quiet",
         "--report-dir", str(reports), "--record", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env={**os.environ, "BROWNOUT_DEMO_CACHE": str(demo_cache)})
    assert result.returncode == 0, result.stdout + result.stderr
    journal = json.loads((reports / "journal.json").read_text())
    definition = journal["experiment"]["definition"]  # a constant rate sends exactly rate × seconds
    sent = round(definition["load"]["rate"] * (definition["steady_state"]["baseline"] + definition["load"]["duration"]))
    lines = [line for _, line in read_lines(out)]
    predictions = [line for line in lines if line.method == "POST"]
    assert len(predictions) == sent and f"recorded {len(lines)} exchanges" in result.stdout
    assert all(line.path == "/predict" and line.response is not None and line.response.status == 200
               for line in predictions)
    assert all(set(line.response.body) >= {"score", "transaction_id", "model_version"}  # type: ignore[union-attr]
               for line in predictions)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    shape = replay_shape(load_recorded(out, by_time=True), 1.0)  # it replays as it was recorded
    assert len(shape.offsets) == len(lines) and shape.duration > 0
