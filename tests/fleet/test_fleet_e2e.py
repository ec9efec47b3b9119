"""A fleet of real sidecars behind one name: discovery, blast radius, synchronized arming, a
sidecar lost mid-step, the fleet kill switch and the dry run, each as users run them."""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from datetime import datetime

import requests

from brownout.experiment.proxies import Targets
from brownout.fleet.targets import choose
from tests.fleet.conftest import NAME10, Fleet

LATENCY = {"fault": "latency", "route": "api", "params": {"delay_ms": 1}}


def _wall(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_discovery_finds_every_sidecar_and_targets_pick_the_seeded_ones(clean: Fleet) -> None:
    fleet = clean
    steps = [{**LATENCY, "at": "0.5s", "duration": "1s", "targets": targets} for targets in
             ({"mode": "one"}, {"mode": "fixed", "value": 2}, {"mode": "percent", "value": 40})]
    path = fleet.experiment(steps)
    result = fleet.run("run", str(path), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    journal = fleet.journal()
    five = [fleet.admin(i) for i in range(5)]
    [group] = journal["fleet"]["groups"]
    assert group["how"] == "discover" and group["sidecars"] == five  # all five, sorted by address
    assert group["source"] == fleet.discover() and set(group["rtt_ms"]) == set(five)
    for line in five:
        assert line in result.stdout  # the resolved set is printed
    for step, injection in enumerate(journal["injections"]):
        targets = Targets.model_validate(steps[step]["targets"])
        expected = [five[i] for i in choose(5, targets, seed=11, step=step)]
        assert len(expected) == (1, 2, 2)[step]
        arming = injection["arming"]
        assert arming["sidecars"] == expected and set(arming["activated"]) == set(expected), arming
        receivers = [five[i] for i in range(5) if injection["id"] in fleet.added(i)]
        assert receivers == expected  # and no other sidecar was sent the fault
        assert injection["removed"] and set(arming["ended"]) == set(expected)
    for i in range(10):
        assert fleet.faults(i) == []
    page = (fleet.folder / "reports" / "report.html").read_text()
    assert "<th>sidecars</th>" in page and "percent 40: 2 of 5: " in page and "arm skew" in page
    # the same seed picks the same sidecars; the dry run shows that choice
    again = fleet.run("run", "--dry-run", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    for step, injection in enumerate(journal["injections"]):
        block = again.stdout.split(f"method[{step}] ")[1].split("method[")[0]
        assert [line.strip() for line in block.splitlines()[1:] if line.strip().startswith("http")] == \
            injection["arming"]["sidecars"]


def test_arm_skew_over_ten_sidecars_is_recorded_and_start_at_honoured(clean: Fleet) -> None:
    fleet = clean
    path = fleet.experiment([{**LATENCY, "at": "0.5s", "duration": "1s"}],
                            proxies=[{"discover": fleet.discover(NAME10)}])
    result = fleet.run("run", str(path), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    journal = fleet.journal()
    [injection] = journal["injections"]
    arming = injection["arming"]
    assert len(arming["sidecars"]) == 10 and len(arming["activated"]) == 10 and arming["failed"] == {}
    assert math.isfinite(arming["arm_skew_ms"]) and math.isfinite(arming["disarm_skew_ms"])
    start_at, end_at = _wall(arming["start_at"]), _wall(arming["end_at"])
    for activated in map(_wall, arming["activated"].values()):
        assert start_at <= activated < start_at + 1.0  # each sidecar's own timer: not before, not much after
    for ended in map(_wall, arming["ended"].values()):
        assert end_at <= ended < end_at + 1.0
    assert "clock" in journal["fleet"]["clock_note"] and journal["fleet"]["lead_s"] >= 0.1


def test_a_sidecar_killed_mid_step_ends_the_run_and_leaves_no_fault(clean: Fleet) -> None:
    fleet = clean
    path = fleet.experiment([{**LATENCY, "at": "0s"}], duration="30s")
    runner = fleet.popen("run", str(path), "--quiet", "--lease", "1.5s")
    try:
        deadline = time.monotonic() + 30
        while not all([f["state"] for f in fleet.faults(i)] == ["active"] for i in range(5)):
            assert time.monotonic() < deadline and runner.poll() is None, "the fault never reached every sidecar"
            time.sleep(0.1)
        fleet.kill(2)  # the fault in force everywhere: its lease renewal finds the sidecar gone
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 4, out + err
    journal = fleet.journal()
    assert journal["status"]["outcome"] == "could_not_run" and fleet.admin(2) in journal["status"]["reason"]
    for i in (0, 1, 3, 4):
        assert fleet.faults(i) == []  # removed by the runner's cleanup, not left to the lease
    [injection] = journal["injections"]
    assert fleet.admin(2) in injection["arming"]["failed"] and "lost while in force" in injection["error"] + \
        injection["arming"]["failed"][fleet.admin(2)]


def test_the_fleet_kill_switch_clears_every_sidecar_and_names_the_unreachable(clean: Fleet) -> None:
    fleet = clean
    for i in range(5):
        for n in range(i + 1):  # sidecar i holds i + 1 faults
            response = requests.post(fleet.admin(i) + "/faults", json={
                "type": "latency", "route": "api", "id": f"f{n}", "params": {"delay_ms": 1}}, timeout=10)
            assert response.status_code == 201
    fleet.kill(4)
    result = fleet.run("faults", "clear", "--discover", fleet.discover())
    assert result.returncode == 4, result.stdout + result.stderr
    report = json.loads(result.stdout)
    by_admin = {s["admin"]: s for s in report["sidecars"]}
    assert set(by_admin) == {fleet.admin(i) for i in range(5)}
    for i in range(4):
        assert sorted(by_admin[fleet.admin(i)]["removed"]) == [f"f{n}" for n in range(i + 1)]
        assert fleet.faults(i) == []
    assert report["unreachable"] == [fleet.admin(4)] and "error" in by_admin[fleet.admin(4)]
    assert f"UNREACHABLE {fleet.admin(4)}" in result.stderr
    # every sidecar reachable: exit 0, with --admin repeated
    fleet.revive(4)
    result = fleet.run("faults", "clear", *[a for i in range(5) for a in ("--admin", fleet.admin(i))])
    assert result.returncode == 0 and json.loads(result.stdout)["unreachable"] == [], result.stderr


def test_the_dry_run_prints_the_plan_and_changes_nothing(clean: Fleet) -> None:
    fleet = clean
    path = fleet.experiment([{**LATENCY, "at": "1s", "duration": "1s", "targets": {"mode": "percent", "value": 40}},
                             {"fault": "error", "route": "api", "at": "0s", "params": {"status": 503}}],
                            safety={"max_targets_percent": 100})
    before = [len(fleet.added(i)) for i in range(5)]
    journal = fleet.folder / "reports" / "journal.json"
    written = journal.stat().st_mtime_ns if journal.exists() else None
    result = fleet.run("run", "--dry-run", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "nothing will be changed" in out and "the plan is valid" in out
    lead = float(re.search(r"faults staged (\d+) ms ahead", out).group(1)) / 1000  # a few measured round trips
    assert f"method[0] latency@api on sidecars (percent 40: 2 of 5; min_armed 2): stage at +{1 - lead:.3f}s, " \
           "start at +1s, end at +2s" in out
    assert f"method[1] error@api on sidecars (all: 5 of 5; min_armed 5): stage at +0.000s, start at +{lead:g}s" in out
    for i in range(5):
        assert fleet.admin(i) in out
        assert fleet.faults(i) == []
        assert len(fleet.added(i)) == before[i]  # no POST /faults reached any sidecar
    assert (journal.stat().st_mtime_ns if journal.exists() else None) == written  # no run, no report
    # a step over the safety cap is refused before anything runs: exit 3, the step named
    capped = fleet.experiment([{**LATENCY, "targets": {"mode": "fixed", "value": 3}}], name="capped.yaml",
                              safety={"max_targets_percent": 50})
    refused = fleet.run("run", "--dry-run", str(capped))
    assert refused.returncode == 3 and "method[0].targets" in refused.stderr and "3 of 5" in refused.stderr


def _after_preflight(runner: subprocess.Popen[str]) -> None:
    """Read the runner's output up to the baseline's first window: preflight has passed (the fleet
    resolved, every sidecar's /metrics read once) and the method has not started."""
    assert runner.stdout is not None
    deadline = time.monotonic() + 30
    for line in runner.stdout:
        if " window 0 " in line:
            return
        assert time.monotonic() < deadline
    raise AssertionError("the runner never closed a window")


def test_a_sidecar_that_cannot_be_armed_ends_the_run_and_the_others_are_disarmed(clean: Fleet) -> None:
    fleet = clean
    path = fleet.experiment([{**LATENCY, "at": "1.5s", "duration": "1s"}], duration="4s")
    runner = fleet.popen("run", str(path))
    _after_preflight(runner)
    fleet.kill(4)  # after preflight, before the step is armed
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 4, out + err
    journal = fleet.journal()
    [injection] = journal["injections"]
    assert "could not arm 1 sidecar" in injection["error"] and fleet.admin(4) in injection["error"]
    assert fleet.admin(4) in injection["arming"]["failed"]
    for i in range(4):
        assert injection["id"] in fleet.added(i) and fleet.faults(i) == []  # armed, then removed at once


def test_min_armed_lets_the_step_go_on_without_a_lost_sidecar(clean: Fleet) -> None:
    fleet = clean
    path = fleet.experiment([{**LATENCY, "at": "1.5s", "duration": "1s", "targets": {"mode": "all", "min_armed": 4}}],
                            duration="4s")
    runner = fleet.popen("run", str(path))
    _after_preflight(runner)
    fleet.kill(4)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, out + err
    [injection] = fleet.journal()["injections"]
    arming = injection["arming"]
    assert set(arming["activated"]) == {fleet.admin(i) for i in range(4)} and list(arming["failed"]) == [fleet.admin(4)]
    assert injection["removed"] and all(fleet.faults(i) == [] for i in range(4))
