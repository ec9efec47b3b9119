"""``brownout corpus``: corpora from real traffic.

``brownout corpus import FILE --out corpus.jsonl`` turns a HAR 1.2 file (browsers, Postman,
mitmproxy's ``hardump``) or a GoReplay ``.gor`` file into recording lines, redacted;
``brownout corpus golden corpus.jsonl --score '$.score' --out golden.jsonl`` derives a golden
set from a recording. Exit 0 on success, 3 on invalid input (a malformed file names the
entry and the field; nothing is written).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TextIO

from brownout.corpus.golden import REASONS, derive_golden
from brownout.corpus.importer import FORMATS, import_file
from brownout.exit_codes import ExitCode
from faults.errors import InvalidInput, InvalidInputs
from faults.jsonpath import compile_path
from proxy.recording import ALWAYS_REDACTED, Redaction, Skip

_IMPORT_EXAMPLES = """examples:
  brownout corpus import session.har --out corpus.jsonl
  brownout corpus import requests_0.gor --out corpus.jsonl --redact-json-path '$.customer.email'
  brownout corpus import dump.har --out corpus.jsonl --redact-header X-Session \\
      --redact-pattern '\\b\\d{16}\\b'

Always redacted (the value becomes [REDACTED]):
  %s.
The output is a recording: a payload corpus as it is (load.payloads, brownout load --payloads),
and the input of `brownout corpus golden`. It is created mode 0600.
""" % ", ".join(h.title() for h in ALWAYS_REDACTED)

_GOLDEN_EXAMPLES = """examples:
  brownout corpus golden recording.jsonl --score '$.score' --out golden.jsonl
  brownout corpus golden corpus.jsonl --score '$.predictions[0].probability' --out golden.jsonl --header X-Model

Kept: 2xx answers that no fault touched, whose score is present and finite, first of each
identical request (method, path, body). Dropped lines are counted by reason and printed.
"""
_FLAGS = {"headers": "--redact-header", "json_paths": "--redact-json-path", "patterns": "--redact-pattern"}
_SIZE = re.compile(r"(\d+)\s*([kKmMgG]?)[iI]?[bB]?")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "corpus", help="corpora from real traffic: import HAR or GoReplay files, derive a golden set",
        description="Turn real traffic into a payload corpus and a golden set.",
    )
    commands = parser.add_subparsers(dest="corpus_command", required=True, metavar="SUBCOMMAND")

    imp = commands.add_parser(
        "import", help="HAR or GoReplay file -> recording lines (redacted)",
        description="Read a HAR 1.2 file (browsers, Postman, mitmproxy's hardump) or a GoReplay .gor file\n"
                    "(requests, and original responses where recorded) and write one recording line per\n"
                    "exchange, redacted. A malformed file exits 3 naming the entry and the field; nothing\n"
                    "is written.",
        epilog=_IMPORT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("file", type=Path, metavar="FILE", help="a .har or .gor (.gor.gz) file")
    imp.add_argument("--out", type=Path, required=True, metavar="FILE", help="the corpus to write (JSONL)")
    imp.add_argument("--format", choices=FORMATS, help="default: from the extension, else from the first bytes")
    add_redaction_options(imp, "redaction (on top of the headers always redacted)")
    imp.add_argument("--max-body", default="16m", metavar="SIZE",
                     help="skip exchanges with a body above this (decoded), e.g. 512k, 16m (default 16m)")
    imp.set_defaults(handler=handle_import)

    gold = commands.add_parser(
        "golden", help="a golden set from a recording: undisturbed 2xx answers with a score",
        description="Derive a golden set (body, expected, method, path) from a recording or imported corpus.",
        epilog=_GOLDEN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    gold.add_argument("corpus", type=Path, metavar="CORPUS", help="recording lines (JSONL)")
    gold.add_argument("--score", required=True, metavar="PATH", help="JSON path of the score in the answer, e.g. '$.score'")
    gold.add_argument("--out", type=Path, required=True, metavar="FILE", help="the golden set to write (JSONL)")
    gold.add_argument("--header", action="append", default=[], metavar="NAME",
                      help="copy this request header into the cases (repeatable; none by default)")
    gold.set_defaults(handler=handle_golden)


def handle_import(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    redaction = redaction_from(args)
    result = import_file(args.file, args.out, fmt=args.format, redaction=redaction, max_body=parse_size(args.max_body))
    print(f"wrote {result.written} exchanges ({result.with_response} with a response) to {args.out}", file=out)
    for reason, count in sorted(result.skipped.items()):
        why = "a body above --max-body" if reason == Skip.TOO_LARGE else "an encoded body redaction cannot read"
        print(f"skipped {count}: {reason} ({why})", file=out)
    for note, count in sorted(result.notes.items()):
        print(f"left out {count}: {note}", file=out)
    return ExitCode.HELD


def handle_golden(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        score = compile_path(args.score)
    except ValueError as exc:
        raise InvalidInput(str(exc), "--score") from None
    result = derive_golden(args.corpus, args.out, score, args.header)
    dropped = sum(result.dropped.values())
    where = f" to {args.out}" if result.kept else ""
    print(f"kept {result.kept} of {result.read} exchanges{where}; dropped {dropped}", file=out)
    for reason in REASONS:
        if result.dropped[reason]:
            print(f"  {result.dropped[reason]:>6}  {reason}", file=out)
    if not result.kept:
        raise InvalidInput("no exchange qualifies for a golden set; nothing written", source=str(args.corpus))
    return ExitCode.HELD


def add_redaction_options(parser: argparse.ArgumentParser, title: str) -> None:
    """``--redact-header``, ``--redact-json-path``, ``--redact-pattern``: read back with ``redaction_from``."""
    red = parser.add_argument_group(title)
    red.add_argument("--redact-header", action="append", default=[], metavar="NAME", help="a header to redact (repeatable)")
    red.add_argument("--redact-json-path", action="append", default=[], metavar="PATH",
                     help="a JSON path in bodies and events, e.g. '$.customer.email' (repeatable)")
    red.add_argument("--redact-pattern", action="append", default=[], metavar="REGEX",
                     help="a regular expression redacted in the path, header values and bodies (repeatable)")


def redaction_from(args: argparse.Namespace) -> Redaction:
    """The redaction the options ask for; a bad one names its flag."""
    try:
        return Redaction.parse({"headers": args.redact_header, "json_paths": args.redact_json_path,
                                "patterns": args.redact_pattern}, field="")
    except InvalidInput as exc:
        errors = exc.errors if isinstance(exc, InvalidInputs) else [exc]
        flagged = [InvalidInput(e.message, _FLAGS.get((e.field or "").lstrip(".").split("[")[0], e.field)) for e in errors]
        raise (flagged[0] if len(flagged) == 1 else InvalidInputs(flagged)) from None


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"not a size: {text!r} (e.g. 512k, 16m)", "--max-body")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
