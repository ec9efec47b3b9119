"""``brownout validate FILE...``: check experiment files fully, without side effects."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from brownout.exit_codes import ExitCode
from brownout.experiment.loader import load_experiment
from faults.errors import InvalidInput, InvalidInputs


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "validate", help="check experiment files and report every error at once (nothing is run)",
        description="Load each experiment file as `brownout run` would (${VAR} expansion, --set, --time-scale, "
                    "fault parameters, data files) and print every error as file:line:col: dotted.path: message. "
                    "Exit 0 when all files are valid, 3 otherwise.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="experiment YAML file(s)")
    add_override_args(parser)
    parser.set_defaults(handler=handle)


def add_override_args(parser: argparse.ArgumentParser) -> None:
    """``--set`` and ``--time-scale``, shared with ``brownout run``."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a value by dotted path, e.g. --set load.rate=20 --set method[0].params.delay_ms=50 "
                             "(the value is read as YAML; repeatable)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="F",
                        help="multiply every duration and offset in the experiment by F (e.g. 0.1 for a quick run)")


def handle(args: argparse.Namespace) -> int:
    return validate_files(args.files, overrides=args.overrides, time_scale=args.time_scale)


def validate_files(
    files: Sequence[Path],
    *,
    env: Mapping[str, str] = os.environ,
    overrides: Sequence[str] = (),
    time_scale: float = 1.0,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> ExitCode:
    """Print ``ok: FILE (title)`` or every error of each file; 0 if all are valid, else 3."""
    out = out or sys.stdout
    err = err or sys.stderr
    code = ExitCode.HELD
    for path in files:
        try:
            experiment = load_experiment(path, env=env, overrides=overrides, time_scale=time_scale)
        except InvalidInput as exc:
            for error in exc.errors if isinstance(exc, InvalidInputs) else [exc]:
                print(error, file=err)
            code = ExitCode.INVALID_INPUT
            continue
        print(f"ok: {path} ({experiment.title})", file=out)
    return code
