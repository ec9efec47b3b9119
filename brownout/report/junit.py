"""JUnit XML for CI: one test case per SLA check (an SLI over a phase), plus recovery and safeguards.

Layout (what Jenkins, GitLab, GitHub test reporters accept): ``<testsuites>`` holding one
``<testsuite>`` named after the experiment; a case's ``classname`` is ``brownout.<phase>``
and its name the check (``latency_p99_ms <= 250``). A violated check has a ``<failure>``
whose message names the first failing window, the bound, the value and the active faults,
and whose text lists every failing window. A check with no data in any of its windows
(nothing was sent) is ``<skipped>`` with that message: it neither passed nor failed. A run
that could not run or was interrupted gets one ``<error>`` case saying why.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from brownout.exit_codes import Outcome
from brownout.report.journal import RunReport
from brownout.steady.verdicts import RECOVERY, REPLAY_SLI, Verdict

_ERROR_OUTCOMES = (Outcome.COULD_NOT_RUN, Outcome.INTERRUPTED, Outcome.INVALID)


def _case(suite: ET.Element, classname: str, name: str, time: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{time:.3f}")


def _phase_time(report: RunReport, phase: str) -> float:
    return sum(w.stats.end - w.stats.start for w in report.windows if w.phase == phase)


def _explained(report: RunReport, verdict: Verdict) -> str:
    """For a replay agreement verdict: which requests of its window disagreed, and how."""
    if verdict.sli != REPLAY_SLI.name:
        return ""
    window = next((w for w in report.windows if w.index == verdict.window_index), None)
    if window is None or not window.quality.replay_examples:
        return ""
    return "".join(f"\n  {example}" for example in window.quality.replay_examples)


def junit_tree(report: RunReport) -> ET.ElementTree:
    root = ET.Element("testsuites", name="brownout")
    suite = ET.SubElement(root, "testsuite", name=report.title, timestamp=report.started_at.isoformat(),
                          hostname=socket.gethostname())
    props = ET.SubElement(suite, "properties")
    for key, value in (("outcome", report.outcome.value), ("exit_code", str(int(report.exit_code))),
                       ("reason", report.reason), ("source", report.source_text)):
        ET.SubElement(props, "property", name=key, value=value)

    for check in report.checks:
        case = _case(suite, f"brownout.{check.phase}", f"{check.sli} {check.comparison} {check.bound:g}",
                     _phase_time(report, check.phase))
        if not check.ok:
            first = check.failures[0]
            failure = ET.SubElement(case, "failure", type="SLAViolation", message=first.message())
            failure.text = "\n".join(v.message() + _explained(report, v) for v in check.failures)
        elif not check.judged:
            ET.SubElement(case, "skipped", message=check.message())

    if report.recovery is not None:
        rec = report.recovery
        case = _case(suite, f"brownout.{RECOVERY}", f"recovered within {rec.within:g}s", _phase_time(report, RECOVERY))
        if not rec.recovered:
            took = "never, in the windows observed" if rec.time_to_recover_s is None else f"after {rec.time_to_recover_s:g}s"
            ET.SubElement(case, "failure", type="NotRecovered",
                          message=f"SLA did not hold again within {rec.within:g}s of the faults ending "
                                  f"at {rec.faults_ended_at:g}s: recovered {took}")

    exp = report.experiment
    if exp is not None and exp.abort_when is not None:
        case = _case(suite, "brownout.safeguards", "abort_when not triggered")
        breaches = [v for w in report.windows for v in w.abort]
        if breaches or report.outcome is Outcome.ABORTED:
            message = breaches[0].message() if breaches else report.reason
            failure = ET.SubElement(case, "failure", type="Aborted", message=message)
            failure.text = "\n".join(v.message() for v in breaches) or report.reason

    if report.outcome in _ERROR_OUTCOMES:
        case = _case(suite, "brownout.run", "experiment ran to the end")
        ET.SubElement(case, "error", type=report.outcome.value, message=report.reason)

    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    for element in (suite, root):
        element.set("tests", str(len(cases)))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
        element.set("time", f"{report.duration_s:.3f}")
    suite.set("skipped", str(skipped))
    return ET.ElementTree(root)


def write_junit(report: RunReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(report)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
