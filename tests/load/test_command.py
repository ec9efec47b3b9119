"""``brownout load``: flags, live output, summary and exit codes (run in-process through argparse)."""

from __future__ import annotations

import argparse
import json
import socket

import pytest

from brownout.commands import load


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="brownout")
    load.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["load", *argv])


def test_constant_load_prints_a_summary_and_exits_0(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(f"{server}/ok/cli", "--rate", "100", "--duration", "1.2s", "--sla-p99", "500",
                 "--max-error-rate", "0.01")
    assert args.handler is load.run and load.run(args) == 0
    out = capsys.readouterr().out
    assert "120 scheduled, 120 sent, 0 dropped" in out and "SLA       met" in out
    # Not a TTY: one plain line per window, with that window's own figures.
    assert "] window 0 (0s–1s): rate " in out and "] window 1 (1s–2s): rate " in out


def test_violated_sla_exits_1_and_json_output(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(f"{server}/delay/0.05", "--rate", "50", "--duration", "0.5", "--sla-p99", "10", "--json")
    assert load.run(args) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["scheduled"] == 25 and result["sla_breaches"][0].startswith("latency_p99_ms")
    assert result["total"]["error_rate"] == 0.0 and result["total"]["p99_ms"] > 10  # the derived rates too
    assert [v["sli"] for v in result["sla_verdicts"]] == ["latency_p99_ms"] and not result["sla_verdicts"][0]["ok"]


def test_invalid_input_exits_3_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert load.run(_args("http://127.0.0.1:9/", "--rate", "10", "--peak", "50", "--duration", "1")) == 3
    assert "--peak: does not apply to shape 'constant'" in capsys.readouterr().err
    assert load.run(_args("ftp://x/", "--rate", "10", "--duration", "1")) == 3
    assert load.run(_args("http://127.0.0.1:9/", "--shape", "stress", "--rate", "10", "--step", "5",
                          "--step-duration", "1", "--max", "20")) == 3
    assert "--shape: stress needs an SLA" in capsys.readouterr().err
    assert load.run(_args("http://127.0.0.1:9/", "--rate", "1", "--duration", "1", "--edge-case", "bogus=0.1")) == 3


def test_unreachable_target_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: refused
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        assert load.run(_args(url, "--rate", "10", "--duration", "1")) == 4
    assert "cannot connect" in capsys.readouterr().err


def test_stress_reports_the_breaking_point(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(f"{server}/delay/0.03", "--shape", "stress", "--rate", "20", "--step", "20", "--step-duration",
                 "0.5", "--max", "40", "--sla-p99", "1")
    assert load.run(args) == 1  # even the first step broke a 1 ms bound against a 30 ms server
    out = capsys.readouterr().out
    assert "step 20/s" in out and "BROKE: latency_p99_ms" in out and "nothing (the first step broke)" in out


def test_brownout_load_as_users_run_it(server: str) -> None:
    import subprocess

    from tests.conftest import BROWNOUT, REPO

    result = subprocess.run([*BROWNOUT, "load", f"{server}/ok/cli", "--rate", "200", "--duration", "1s", "--json"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["scheduled"] == 200 and summary["dropped"] == 0


def test_brownout_load_sla_flags_use_the_experiment_sla_and_its_wording(capsys: pytest.CaptureFixture[str]) -> None:
    def run(*sla: str) -> str:
        assert load.run(_args("http://127.0.0.1:9/", "--rate", "1", "--duration", "1", *sla)) == 3
        return capsys.readouterr().err

    assert "--sla latency_p99ms: unknown key (did you mean 'latency_p99_ms'?)" in run("--sla", "latency_p99ms=4")
    assert "--sla error_rate: must be <= 1, got '2'" in run("--sla", "error_rate=2")
    assert "--sla: expected KEY=VALUE, got 'p99'" in run("--sla", "p99")
    assert "--sla max_retry_amplification: is judged on a proxy's counters" in run("--sla", "max_retry_amplification=2")
