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
# Shorter for the long ones; a kill with a restart needs time for a process to come back.
SCALE = {"soak": 0.02, "stress-to-failure": 0.1, "gpu-worker-killed": 0.5, "gpu-replica-killed": 0.5,
         # windows long enough that requests in flight at their edges do not tip a ratio
         "gpu-retry-storm": 0.25, "gpu-retry-backoff": 0.25,
         "replay-feature-store": 0.5,  # a replay at 0.15 is 6.7 times its recorded pace: too much for a cold stack
         # About 1 golden probe in 10 disagrees under its fault (the score cache answers many of the
         # rest): at 0.15 some 40 probes fall in the fault and, once in CI, every one agreed (about
         # 1 run in 70); at 0.4 some 100 do (about 1 in 30,000).
         "feature-store-latency": 0.4}
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
    # Failover and fallback: GPU replicas reset or dead, the degraded score answers with 200.
    "dropped-connections": "golden_agreement", "gpu-all-replicas-killed": "golden_agreement",
    "llm-preemption-stalls": "itl_p99_ms",
    "replay-feature-store": "replay_agreement",
}
# The GPU failover game days' own checks (see _check_gpu_game_day).
GPU_GAME_DAYS = {"gpu-replica-killed", "gpu-all-replicas-killed", "gpu-worker-killed", "gpu-queue-overflow",
                 "gpu-replica-down"}
LATENCY_SLIS = {"latency_p50_ms", "latency_p95_ms", "latency_p99_ms"}
# Capacity game days: the exit code, and the SLI that must fail (None: none may).
CAPACITY = {"llm-token-budget": (1, "stream_integrity_failures"), "llm-preemption-stalls": (1, "itl_p99_ms"),
            "gpu-retry-storm": (1, "retry_amplification[gpu-worker]"), "gpu-retry-backoff": (0, None),
            "gpu-queue-full": (1, "error_rate")}


def _demo(tmp_path: Path, name: str, demo_cache: Path,
          reports_dir: str = "reports") -> tuple[subprocess.CompletedProcess[str], dict]:
    reports = tmp_path / reports_dir
    result = subprocess.run(
        [*BROWNOUT, "demo", "--experiment", name, "--time-scale", str(SCALE.get(name, 0.15)), "--quiet",
         "--report-dir", str(reports)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env={**__import__("os").environ, "BROWNOUT_DEMO_CACHE": str(demo_cache)},
    )
    journal = json.loads((reports / "journal.json").read_text()) if (reports / "journal.json").exists() else {}
    return result, journal


def _failed(journal: dict) -> set[str]:
    return {v["sli"] for v in journal["verdicts"] if not v["ok"]}


def _statuses(journal: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in journal["windows"]:
        for status_class, n in (w["stats"].get("statuses") or {}).items():
            counts[status_class] = counts.get(status_class, 0) + n
    return counts


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
        failed, counts = _failed(journal), _statuses(journal)
        assert result.returncode == 1 and CAUGHT_WITH_200[name] in failed, (failed, result.stdout)
        # The answers were 200s (a stray 5xx on a busy machine aside): the content checks caught it.
        assert counts.get("2xx", 0) >= 0.99 * sum(counts.values()), counts
    if name in CAPACITY:
        code, sli = CAPACITY[name]
        failed = _failed(journal)
        assert result.returncode == code and (sli in failed if sli else not failed), (failed, result.stdout)
    if name == "llm-token-budget":  # the budget's 429s: fast refusals, counted by the proxy as arrivals
        method = next(p for p in journal["phases"] if p["phase"] == "method")
        statuses = {s: n for row in method["sidecars"].values() for s, n in row["routes"]["model-api"]["statuses"].items()}
        assert statuses.get("429", 0) > 10 and not any(s.startswith("5") for s in statuses), statuses
    if name in ("gpu-retry-storm", "gpu-retry-backoff", "gpu-queue-full"):
        _check_retry_game_day(name, result, journal)
    if name in GPU_GAME_DAYS:
        _check_gpu_game_day(tmp_path, name, demo_cache, result, journal)


def _check_gpu_game_day(tmp_path: Path, name: str, demo_cache: Path,
                        result: subprocess.CompletedProcess[str], journal: dict) -> None:
    """Two GPU worker replicas, each behind its own sidecar: what each kill or overflow must show."""
    kills = [i for i in journal["injections"] if i["kind"] == "action"]
    assert all(i["started_at"] is not None and i["error"] is None for i in kills), kills
    if name == "gpu-replica-down":
        # `down` on one of the two GPU sidecars (targets: one): failover keeps every answer right.
        assert not _failed(journal) - LATENCY_SLIS, (_failed(journal), result.stdout)
        if result.returncode != 0:
            result, journal = _demo(tmp_path, name, demo_cache, "again")
        assert result.returncode == 0, result.stdout + result.stderr
        [down] = journal["injections"]
        [group] = [g for g in journal["fleet"]["groups"] if g["label"] == "gpu-sidecars"]
        assert down["arming"]["targets"] == "one: 1 of 2" and len(group["sidecars"]) == 2
        assert down["arming"]["sidecars"][0] in group["sidecars"] and down["removed"]
        method = next(p for p in journal["phases"] if p["phase"] == "method")
        other = next(s for s in group["sidecars"] if s not in down["arming"]["sidecars"])
        assert method["sidecars"][other]["requests"] > 0  # the other replica's sidecar carried the traffic
    elif name == "gpu-replica-killed":
        # Failover keeps every answer right; only latency may suffer from a busy machine,
        # and then the game day gets a second run, as any timing check would.
        assert not _failed(journal) - LATENCY_SLIS, (_failed(journal), result.stdout)
        if result.returncode != 0:
            result, journal = _demo(tmp_path, name, demo_cache, "again")
        assert result.returncode == 0, result.stdout + result.stderr
        assert journal["recovery"]["recovered"] and len(kills) == 1
    elif name == "gpu-all-replicas-killed":
        # Fallback answers: fast 200s, so the reason is a quality SLI, never a transport one.
        assert "golden_agreement" in journal["status"]["reason"], journal["status"]
        assert not _failed(journal) & {"error_rate"} and len(kills) == 2
        assert not journal["recovery"]["recovered"]  # nothing restarts them
    elif name == "gpu-worker-killed":
        # The whole tier down for a while: the fallback's degraded answers break golden agreement
        # during the outage (deviated: exit 1), and the journal says whether and how soon it recovered.
        assert "golden_agreement" in _failed(journal) and len(kills) == 2
        counts = _statuses(journal)
        assert counts.get("2xx", 0) >= 0.99 * sum(counts.values()), counts
        assert result.returncode == 1, journal["status"]
        recovery = journal["recovery"]
        assert recovery["recovered"] == (recovery["time_to_recover_s"] is not None), recovery
        if recovery["recovered"]:
            assert recovery["time_to_recover_s"] <= recovery["within"], recovery
    else:  # gpu-queue-overflow: the shed 503s reach the clients
        assert result.returncode == 1 and "error_rate" in _failed(journal), (_failed(journal), result.stdout)
        assert _statuses(journal).get("5xx", 0) > 0


def _check_retry_game_day(name: str, result: subprocess.CompletedProcess[str], journal: dict) -> None:
    """A rate limit or a full queue on both GPU replicas: what the model API's retries did to them."""
    method = {v["sli"]: v for p in journal["phases"] if p["phase"] == "method" for v in p["verdicts"]}
    amplification = method["retry_amplification[gpu-worker]"]["value"]
    policy = {"gpu-retry-storm": "immediate:3", "gpu-retry-backoff": "backoff:3"}.get(name, "backoff:1")
    assert f"the model API retries: {policy}" in result.stdout
    # Either way the clients got 503s: capacity is what it is, only the load on the replicas differs.
    assert _statuses(journal).get("5xx", 0) > 10
    if name == "gpu-retry-storm":
        assert "retry_amplification[gpu-worker]" in journal["status"]["reason"], journal["status"]
        storm = [v["value"] for v in journal["verdicts"] if v["sli"] == "retry_amplification[gpu-worker]"
                 and v["active_faults"] and v["value"] is not None]
        assert max(storm) > 2.5, storm  # about three calls per request while the limit bites
        assert method["retry_after_violations[gpu-worker]"]["value"] > 10
    else:
        assert amplification < 1.3, method  # one call per request at most (the cache saves some)
        assert method.get("retry_after_violations[gpu-worker]", {"value": 0})["value"] == 0


def test_default_game_day_names_what_broke(tmp_path: Path, demo_cache: Path) -> None:
    """Feature-store latency: fast 200s, wrong answers; golden agreement must catch it."""
    result, journal = _demo(tmp_path, "feature-store-latency", demo_cache)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = {v["sli"] for v in journal["verdicts"] if not v["ok"]}
    assert "golden_agreement" in failed
    assert "latency@feature-store" in result.stdout and "golden_agreement" in result.stdout
    assert (tmp_path / "reports" / "junit.xml").exists()


def test_a_game_day_names_its_retry_policy_and_the_environment_overrides_it(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from brownout.demo.game_day import RETRY_ENV, requested_retry
    from faults.errors import InvalidInput

    monkeypatch.delenv(RETRY_ENV, raising=False)
    storm = requested_retry(LIBRARY / "gpu-retry-storm.yaml")
    assert storm is not None and (storm.mode, storm.retries) == ("immediate", 3)
    assert requested_retry(LIBRARY / "steady-load.yaml") is None  # the demo's default
    monkeypatch.setenv(RETRY_ENV, "none")
    assert requested_retry(LIBRARY / "gpu-retry-storm.yaml") is None  # the environment wins: game_day reads it
    monkeypatch.delenv(RETRY_ENV)
    bad = tmp_path / "bad.yaml"
    bad.write_text("demo: {retry: sometimes}\n")
    with pytest.raises(InvalidInput) as caught:
        requested_retry(bad)
    assert caught.value.field == "demo.retry" and caught.value.source == str(bad)
    # brownout validate says where, as for any key.
    result = subprocess.run([*BROWNOUT, "validate", str(LIBRARY / "gpu-retry-storm.yaml"), "--set", "demo.retry=often"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and "demo.retry: " in result.stdout + result.stderr, result
