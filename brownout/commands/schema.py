"""``brownout schema``: print the JSON Schema of experiment files (for editors and CI)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from brownout.exit_codes import ExitCode
from brownout.experiment.schema import experiment_json_schema


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "schema", help="print the JSON Schema of experiment files",
        description="Print the JSON Schema of experiment files. Save it and point yaml-language-server at it: "
                    "`brownout schema > experiment.schema.json`, then put "
                    "`# yaml-language-server: $schema=experiment.schema.json` at the top of an experiment.",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    return print_schema()


def print_schema(out: TextIO | None = None) -> ExitCode:
    print(json.dumps(experiment_json_schema(), indent=2, ensure_ascii=False), file=out or sys.stdout)
    return ExitCode.HELD
