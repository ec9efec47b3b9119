"""A fleet of real sidecars behind one name: discovery, blast radius, synchronized arming, a
sidecar lost mid-step, the fleet kill switch and the dry run, each as users run them."""

from __future__ import annotations

import json
import math
import re
import subprocess
import threading
import time
from typing import Any
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


class _Traffic:
    """Clients of every sidecar (as production traffic would be), 10 requests a second each,
    for at most ``limit_s``: the sidecars count them in their own /metrics."""

    def __init__(self, urls: list[str], limit_s: float = 40.0) -> None:
        self.urls, self.limit_s = urls, limit_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        with requests.Session() as session:
            while not self.stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                for url in self.urls:
                    try:
                        session.get(url, timeout=2)
                    except requests.RequestException:
                        pass
                self.stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def __enter__(self) -> _Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _sidecar_experiment(fleet: Fleet, scope: str, error_rate: float) -> Any:
    return fleet.experiment(
        [{"fault": "error", "route": "api", "at": "1s", "duration": "2s", "params": {"status": 503},
          "targets": {"mode": "fixed", "value": 1}}], duration="4s", name=f"slis-{scope}.yaml",
        steady_state={"window": "1s", "baseline": "1s", "sla": {"error_rate": 1.0},
                      "sidecars": {"scope": scope, "route": "api", "sla": {"error_rate": error_rate}}})


def test_fleet_slis_per_sidecar_name_the_sidecar_that_broke(clean: Fleet) -> None:
    fleet = clean
    five = [fleet.admin(i) for i in range(5)]
    [faulted] = [five[i] for i in choose(5, Targets(mode="fixed", value=1), seed=11, step=0)]
    with _Traffic([fleet.sidecars[i].url("api", "/") for i in range(5)]):
        result = fleet.run("run", str(_sidecar_experiment(fleet, "each", 0.1)), "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    journal = fleet.journal()
    judged = [v for v in journal["verdicts"] if v["sli"] == "sidecar_error_rate"]
    assert {v["subject"] for v in judged} == set(five)  # a verdict per sidecar, every window
    failed = [v for v in judged if not v["ok"]]
    assert failed and {v["subject"] for v in failed} == {faulted} and {v["phase"] for v in failed} == {"method"}
    assert faulted in journal["status"]["reason"] and "sidecar_error_rate" in journal["status"]["reason"]
    method = next(p for p in journal["phases"] if p["phase"] == "method")
    assert method["sidecars"][faulted]["routes"]["api"]["statuses"].get("503", 0) > 0
    assert all("503" not in method["sidecars"][s]["routes"]["api"]["statuses"] for s in five if s != faulted)
    assert "sidecars (their own counts):" in result.stdout and faulted in result.stdout
    page = (fleet.folder / "reports" / "report.html").read_text()
    assert "<h2>Sidecars</h2>" in page and f'<tr class="fail"><td>method</td><td>{faulted}</td>' in page


def test_fleet_slis_summed_over_the_fleet(clean: Fleet) -> None:
    fleet = clean
    with _Traffic([fleet.sidecars[i].url("api", "/") for i in range(5)]):
        held = fleet.run("run", str(_sidecar_experiment(fleet, "fleet", 0.6)), "--quiet")
        assert held.returncode == 0, held.stdout + held.stderr  # one sidecar in five: the fleet holds
        judged = [v for v in fleet.journal()["verdicts"] if v["sli"] == "sidecar_error_rate"]
        assert {v["subject"] for v in judged} == {"fleet"} and all(v["ok"] for v in judged)
        assert max(v["value"] for v in judged if v["value"] is not None) > 0.05  # it did see the 503s
        broke = fleet.run("run", str(_sidecar_experiment(fleet, "fleet", 0.02)), "--quiet")
    assert broke.returncode == 1, broke.stdout + broke.stderr
    assert "sidecar_error_rate fleet" in fleet.journal()["status"]["reason"]
