"""Reports: journal round trip, JUnit XML (one case per check), terminal summary, exit codes."""

from __future__ import annotations

import json
import random
import xml.dom.minidom
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from brownout.exit_codes import ExitCode, Outcome, exit_code_for, exit_code_for_outcome
from brownout.experiment import load_experiment
from brownout.records import RequestRecord
from brownout.report import (
    JOURNAL_SCHEMA_VERSION, Injection, RunReport, TimelineEvent, read_journal, render_summary, write_reports,
)
from brownout.report.html import render_html_from_journal
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.verdicts import decide_outcome
from faults.errors import Conflict, InvalidInput, InvalidInputs, NotFound, Unreachable

GOOD = Path(__file__).parent / "data" / "fraud_spike.yaml"
START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def make_report(*, slow_method: bool, aborted: bool = False) -> RunReport:
    exp = load_experiment(GOOD, env={"BROWNOUT_TOKEN": "s3cret"}, time_scale=0.2)  # 1 s windows
    checker = SteadyStateChecker(exp.steady_state, exp.abort_when)
    rng = random.Random(7)
    phases = ["baseline"] * 2 + ["method"] * 2 + ["recovery"] * 2
    for w, phase in enumerate(phases):
        latency = 0.4 if slow_method and phase == "method" else 0.02
        for i in range(150):
            body = json.dumps({"score": rng.random() * 0.3, "model_version": "7"}).encode()
            checker.feed(RequestRecord(w + i / 150, latency, 200, body=body))
        faults = ["latency@feature-store"] if phase == "method" else []
        checker.close_window(w, phase=phase, active_faults=faults)
    recovery = checker.recovery(faults_ended_at=4.0, within=exp.recovery.within)
    checks = checker.checks(recovery)
    return RunReport(
        experiment=exp, outcome=decide_outcome(checks, aborted=aborted, recovery=recovery),
        reason="SLA violated" if slow_method else "", started_at=START, ended_at=START + timedelta(seconds=6),
        timeline=[TimelineEvent(0.0, "phase", {"phase": "baseline"}), TimelineEvent(2.0, "inject", {"id": "f1"})],
        windows=checker.results, phases=checker.phase_results(), checks=checks,
        injections=[Injection("f1", 0, "fault", "latency", "feature-store", 2.0, 4.0, proxy="http://127.0.0.1:8475",
                              started_at=2.01, ended_at=4.0, params={"delay_ms": 400}, removed=True)],
        recovery=recovery,
    )


def test_journal_round_trip(tmp_path: Path) -> None:
    report = make_report(slow_method=True)
    paths = write_reports(report, tmp_path / "out")
    journal = read_journal(paths["journal"])
    assert journal["schema_version"] == JOURNAL_SCHEMA_VERSION
    assert journal["status"] == {"outcome": "deviated", "exit_code": 1, "reason": "SLA violated"}
    assert journal["experiment"]["title"] == report.title and journal["experiment"]["source"] == str(GOOD.resolve())
    assert journal["experiment"]["definition"]["proxies"][0]["token"] == "***"
    assert "s3cret" not in paths["journal"].read_text()
    assert journal["started_at"] == "2026-01-02T03:04:05+00:00" and journal["duration_s"] == 6.0
    assert [w["phase"] for w in journal["windows"]] == ["baseline"] * 2 + ["method"] * 2 + ["recovery"] * 2
    assert journal["windows"][2]["active_faults"] == ["latency@feature-store"]
    failed = [v for v in journal["verdicts"] if not v["ok"]]
    assert {v["sli"] for v in failed} == {"latency_p99_ms"} and {v["window"] for v in failed} == {2, 3}
    assert failed[0]["message"].startswith("window 2 (2s–3s, method)")  # 0.2 × 5 s windows
    assert journal["injections"][0]["params"] == {"delay_ms": 400} and journal["injections"][0]["removed"]
    assert journal["recovery"]["recovered"] is True
    assert journal["timeline"][1] == {"t": 2.0, "event": "inject", "detail": {"id": "f1"}}
    assert len(journal["checks"]) == len(report.checks)


def test_read_journal_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text('{"schema_version": 99}')
    with pytest.raises(InvalidInput, match="schema version"):
        read_journal(path)


def test_junit_has_one_case_per_check_and_failures_where_expected(tmp_path: Path) -> None:
    report = make_report(slow_method=True)
    path = write_reports(report, tmp_path)["junit"]
    xml.dom.minidom.parse(str(path))  # well-formed
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == report.title
    cases = suite.findall("testcase")
    # one per check, plus recovery and the abort_when safeguard
    assert len(cases) == len(report.checks) + 2 == int(suite.get("tests", "0"))
    failing = {(c.get("classname"), c.get("name")): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failing) == {("brownout.method", "latency_p99_ms <= 250")}
    failure = failing[("brownout.method", "latency_p99_ms <= 250")]
    assert failure is not None and failure.get("type") == "SLAViolation"
    message = failure.get("message", "")
    assert "window 2" in message and "bound <= 250" in message and "latency_p99_ms = 40" in message
    assert "faults active: latency@feature-store" in message
    assert (failure.text or "").count("\n") == 1  # both failing windows listed
    assert suite.get("failures") == "1" and root.get("failures") == "1" and suite.get("errors") == "0"


def test_junit_all_pass_and_error_outcomes(tmp_path: Path) -> None:
    report = make_report(slow_method=False)
    assert report.outcome is Outcome.HELD and report.exit_code == ExitCode.HELD
    root = ET.parse(write_reports(report, tmp_path / "a")["junit"]).getroot()
    assert root.get("failures") == "0" and int(root.get("tests", "0")) > 5
    broken = RunReport(None, Outcome.COULD_NOT_RUN, "proxy unreachable", START, START, source="x.yaml")
    root = ET.parse(write_reports(broken, tmp_path / "b")["junit"]).getroot()
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("message") == "proxy unreachable" and root.get("errors") == "1"


def test_summary_names_outcome_checks_and_faults() -> None:
    text = render_summary(make_report(slow_method=True), paths={"journal": Path("r/journal.json")})
    assert text.startswith("DEVIATED") and "(exit 1)" in text
    assert "baseline" in text and "method" in text and "p99ms" in text
    assert "FAIL method: latency_p99_ms <= 250: violated in 2 of 2 window(s)" in text
    assert "latency@feature-store" in text and "r/journal.json" in text
    held = render_summary(make_report(slow_method=False))
    assert held.startswith("HELD") and "FAIL" not in held and "recovery: SLA held again" in held


@pytest.mark.parametrize(("exc", "code"), [
    (InvalidInput("bad"), ExitCode.INVALID_INPUT),
    (InvalidInputs([InvalidInput("a"), InvalidInput("b")]), ExitCode.INVALID_INPUT),
    (Unreachable("proxy down"), ExitCode.COULD_NOT_RUN),
    (NotFound("no route"), ExitCode.COULD_NOT_RUN),
    (Conflict("x"), ExitCode.COULD_NOT_RUN),
    (RuntimeError("bug"), ExitCode.COULD_NOT_RUN),
    (KeyboardInterrupt(), ExitCode.INTERRUPTED),
])
def test_exit_code_for_exceptions(exc: BaseException, code: ExitCode) -> None:
    assert exit_code_for(exc) is code


def test_exit_codes_for_outcomes_are_exactly_the_design() -> None:
    assert {o.value: int(exit_code_for_outcome(o)) for o in Outcome} == {
        "held": 0, "deviated": 1, "aborted": 2, "baseline_failed": 2, "invalid": 3, "could_not_run": 4,
        "interrupted": 130,
    }


def test_a_check_without_data_is_skipped_in_junit_and_named_in_the_summary(tmp_path: Path) -> None:
    exp = load_experiment(GOOD, env={}, time_scale=0.2)
    checker = SteadyStateChecker(exp.steady_state)
    for i in range(100):
        checker.feed(RequestRecord(i / 100, 0.02, 200, body=b'{"score": 0.1, "model_version": "7"}'))
    checker.close_window(0, phase="baseline")
    for w in (1, 2):  # nothing scheduled in these windows: their bounds have no data
        checker.close_window(w, phase="method")
    checks = checker.checks()
    report = RunReport(exp, decide_outcome(checks, aborted=False), "", START, START + timedelta(seconds=3),
                       windows=checker.results, phases=checker.phase_results(), checks=checks)
    assert report.outcome is Outcome.HELD
    root = ET.parse(write_reports(report, tmp_path)["junit"]).getroot()
    skipped = {c.get("name"): c.find("skipped") for c in root.iter("testcase") if c.find("skipped") is not None}
    assert "latency_p99_ms <= 250" in skipped and root.find("testsuite").get("skipped") == str(len(skipped))  # type: ignore[union-attr]
    assert skipped["latency_p99_ms <= 250"].get("message") == "method: latency_p99_ms <= 250: no data in any of 2 window(s)"  # type: ignore[union-attr]
    assert root.get("failures") == "0"
    text = render_summary(report)
    assert "without data" in text and "NO DATA method: latency_p99_ms <= 250: no data in any of 2 window(s)" in text
    journal = read_journal(tmp_path / "journal.json")
    method_p99 = next(c for c in journal["checks"] if c["name"] == "method: latency_p99_ms <= 250")
    assert method_p99["no_data"] == 2 and method_p99["ok"] is True
    assert all(v["no_data"] and v["value"] is None for v in journal["verdicts"] if v["phase"] == "method")
    html = render_html_from_journal(journal)
    assert "no data in any of 2 window(s)" in html and "✗ failed" not in html
