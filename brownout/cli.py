"""The ``brownout`` command: one explicit list of subcommands, exit codes mapped in one place."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from brownout.commands import corpus, demo, faults, load, load_worker, proxy, report, run, schema, validate
from brownout.exit_codes import ExitCode, exit_code_for
from faults.errors import InvalidInput, InvalidInputs

# Each module adds its subparser with ``register`` and sets ``handler(args) -> int``.
COMMANDS = (demo, proxy, faults, run, load, load_worker, corpus, validate, schema, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brownout",
        description="Chaos-engineering fault injection for ML APIs: a proxy, experiments, load and reports.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:  # every failure leaves through the one mapping
        report_error(exc, sys.stderr)
        return exit_code_for(exc)


def report_error(exc: BaseException, stream: TextIO) -> None:
    """Input errors one per line (``file:line:col: field: message``), others as one line."""
    if isinstance(exc, InvalidInputs):
        for error in exc.errors:
            print(error, file=stream)
    elif isinstance(exc, InvalidInput):
        print(exc, file=stream)
    else:
        print(f"brownout: {exc.__class__.__name__}: {exc}", file=stream)


if __name__ == "__main__":
    sys.exit(main())
