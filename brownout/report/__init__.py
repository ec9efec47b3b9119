"""Reports of a run: the JSON journal, JUnit XML, and the terminal summary."""

from pathlib import Path

from brownout.report.journal import JOURNAL_SCHEMA_VERSION, Injection, RunReport, TimelineEvent, read_journal, write_journal
from brownout.report.junit import write_junit
from brownout.report.summary import render_summary


def write_reports(report: RunReport, directory: Path) -> dict[str, Path]:
    """Write ``journal.json`` and ``junit.xml`` into ``directory``; return their paths by name."""
    return {
        "journal": write_journal(report, directory / "journal.json"),
        "junit": write_junit(report, directory / "junit.xml"),
    }


__all__ = [
    "JOURNAL_SCHEMA_VERSION", "Injection", "RunReport", "TimelineEvent", "read_journal", "render_summary",
    "write_journal", "write_junit", "write_reports",
]
