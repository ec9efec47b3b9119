"""``brownout report JOURNAL [-o report.html]``: render any run journal as a self-contained HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

from brownout.report.journal import read_journal
from faults.errors import InvalidInput


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "report", help="render a run journal (journal.json) as a single-file HTML report",
        description="Render a journal written by `brownout run` as one HTML file that opens offline: verdicts, "
                    "latency, error rate and throughput over time with the fault windows shaded, prediction "
                    "quality, injections, stress breaking points and the timeline. Exit 3 when the journal "
                    "is missing or invalid.",
    )
    parser.add_argument("journal", type=Path, metavar="JOURNAL", help="journal.json written by `brownout run`")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where the HTML goes (default: report.html next to journal.json, else JOURNAL with .html)")
    parser.set_defaults(handler=handle)


def default_output(journal: Path) -> Path:
    """``reports/journal.json`` → ``reports/report.html`` (as ``brownout run`` names it); else ``x.json`` → ``x.html``."""
    return journal.with_name("report.html") if journal.name == "journal.json" else journal.with_suffix(".html")


def handle(args: argparse.Namespace) -> int:
    # plotly is the report extra: import it only when this command runs, so the CLI works without it
    try:
        from brownout.report.html import write_html_from_journal
    except ImportError as exc:  # exit 4 (could not run), saying what to install
        raise RuntimeError(f"the HTML report needs the report extra: pip install 'brownout[report]' ({exc})") from None

    journal = read_journal(args.journal)
    output = args.output or default_output(args.journal)
    try:
        path = write_html_from_journal(journal, output)
    except InvalidInput as exc:  # a journal of the right version whose contents have the wrong shape
        raise InvalidInput(f"invalid journal: {exc.message}", exc.field, source=str(args.journal)) from None
    print(path)
    return 0
