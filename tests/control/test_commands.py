"""``brownout validate`` and ``brownout schema`` handlers, through their argparse registration."""

from __future__ import annotations

import argparse
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from brownout.commands import schema, validate
from brownout.exit_codes import ExitCode

DATA = Path(__file__).parent / "data"


def run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="brownout")
    sub = parser.add_subparsers(dest="command", required=True)
    validate.register(sub)
    schema.register(sub)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = args.handler(args)
    return code, out.getvalue(), err.getvalue()


def test_validate_good_files() -> None:
    code, out, err = run(["validate", str(DATA / "fraud_spike.yaml"), str(DATA / "redis_tcp_kill.yaml")])
    assert code == ExitCode.HELD == 0 and err == ""
    assert out.splitlines() == [
        f"ok: {DATA / 'fraud_spike.yaml'} (Feature store slows down during a holiday spike)",
        f"ok: {DATA / 'redis_tcp_kill.yaml'} (Cache gets slow, then the worker process dies)",
    ]


def test_validate_reports_all_errors_and_exits_3() -> None:
    code, out, err = run(["validate", str(DATA / "invalid.yaml"), str(DATA / "fraud_spike.yaml")])
    assert code == ExitCode.INVALID_INPUT == 3
    lines = err.splitlines()
    assert len(lines) == 12
    assert lines[0] == f"{DATA / 'invalid.yaml'}:4:3: target.url: must be an http:// or https:// URL, got 'ftp://example.com'"
    assert f"{DATA / 'invalid.yaml'}:20:14: method[0].params.delay_ms: must be >= 0" in lines
    assert out.startswith("ok: ")  # the valid file is still checked and reported


def test_validate_with_overrides() -> None:
    code, _, err = run(["validate", str(DATA / "fraud_spike.yaml"), "--set", "load.peak=-1", "--time-scale", "0.5"])
    assert code == 3 and "load.peak: must be > 0, got -1" in err


def test_schema_prints_json_schema() -> None:
    code, out, _ = run(["schema"])
    assert code == 0
    schema_doc = json.loads(out)
    assert schema_doc["title"] == "Brownout experiment" and "method" in schema_doc["properties"]
