"""``brownout demo``: every library experiment runs against the demo stack, shortened.

The stack, the proxy and the runner are all real (``brownout demo`` as a subprocess, as users
run it); ``--time-scale`` shortens each game day.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BROWNOUT, REPO

LIBRARY = REPO / "experiments"
# Shorter for the long ones; the kill needs time for a process to come back.
SCALE = {"soak": 0.02, "stress-to-failure": 0.1, "gpu-worker-killed": 0.5,
         "replay-feature-store": 0.5}  # a replay at 0.15 is 6.7 times its recorded pace: too much for a cold stack
NAMES = sorted(p.stem for p in LIBRARY.glob("*.yaml"))
# "200 OK but wrong": the fault families that keep every status 200, and the SLI that must catch each.
CAUGHT_WITH_200 = {
    "ml-crossed-responses": "echo_mismatch_rate", "ml-missing-features": "golden_agreement",
    "ml-model-version-skew": "model_version_skew_rate", "ml-nan-tensor": "non_finite_rate",
    "ml-schema-drift": "schema_violation_rate", "ml-score-corruption": "golden_agreement",
    "ml-stale-features": "golden_agreement", "llm-corrupt-tokens": "stream_integrity_failures",
    "llm-cut-stream": "stream_integrity_failures", "llm-drop-finish-reason": "stream_integrity_failures",
    "llm-slow-tokens": "itl_p99_ms", "llm-ttft-delay": "ttft_p99_ms",
    "feature-store-latency": "golden_agreement", "truncated-payloads": "golden_agreement",
    "replay-feature-store": "replay_agreement",
}


def _demo(tmp_path: Path, name: str, demo_cache: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    reports = tmp_path / "reports"
    result = subprocess.run(
        [*BROWNOUT, "demo", "--experiment", name, "--time-scale", str(SCALE.get(name, 0.15)), "--quiet",
         "--report-dir", str(reports)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env={**__import__("os").environ, "BROWNOUT_DEMO_CACHE": str(demo_cache)},
    )
    journal = json.loads((reports / "journal.json").read_text()) if (reports / "journal.json").exists() else {}
    return result, journal


def test_library_has_the_classics_each_with_a_description() -> None:
    assert len(NAMES) >= 10
    for name in NAMES:
        doc = yaml.safe_load((LIBRARY / f"{name}.yaml").read_text())
        assert len(doc["description"].split()) >= 20, f"{name}: say what it teaches"


def test_every_library_file_validates() -> None:
    result = subprocess.run([*BROWNOUT, "validate", *(str(LIBRARY / f"{n}.yaml") for n in NAMES)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok: ") == len(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_game_day_runs_against_the_demo_stack(tmp_path: Path, name: str, demo_cache: Path) -> None:
    result, journal = _demo(tmp_path, name, demo_cache)
    assert result.returncode in (0, 1, 2), result.stdout + result.stderr
    assert journal["status"]["exit_code"] == result.returncode
    assert journal["windows"] or journal["extra"].get("stress")
    assert all(i["removed"] or i["kind"] == "action" for i in journal["injections"])  # cleanup happened
    assert "reports:" in result.stdout
    if name in CAUGHT_WITH_200:
        failed = {v["sli"] for v in journal["verdicts"] if not v["ok"]}
        counts: dict[str, int] = {}
        for w in journal["windows"]:
            for status_class, n in (w["stats"].get("statuses") or {}).items():
                counts[status_class] = counts.get(status_class, 0) + n
        assert result.returncode == 1 and CAUGHT_WITH_200[name] in failed, (failed, result.stdout)
        # The answers were 200s (a stray 5xx on a busy machine aside): the content checks caught it.
        assert counts.get("2xx", 0) >= 0.99 * sum(counts.values()), counts


def test_default_game_day_names_what_broke(tmp_path: Path, demo_cache: Path) -> None:
    """Feature-store latency: fast 200s, wrong answers; golden agreement must catch it."""
    result, journal = _demo(tmp_path, "feature-store-latency", demo_cache)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = {v["sli"] for v in journal["verdicts"] if not v["ok"]}
    assert "golden_agreement" in failed
    assert "latency@feature-store" in result.stdout and "golden_agreement" in result.stdout
    assert (tmp_path / "reports" / "junit.xml").exists()
