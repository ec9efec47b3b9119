"""``make demo`` reports the game day's verdict plainly: exit 1 (a weakness found) is the demo working."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(("code", "make_ok", "says"), [
    (0, True, "game day verdict: the SLA held (exit 0)"),
    (1, True, "game day verdict: the SLA was violated (exit 1) — the game day found a weakness, as designed"),
    (2, False, "game day stopped early: a safeguard fired or the baseline failed (exit 2)"),
    (3, False, "game day not started: invalid input (exit 3)"),
    (4, False, "game day could not run: a service or the proxy could not be reached (exit 4)"),
    (130, False, "game day interrupted (exit 130)"),
])
def test_demo_target_reports_the_verdict(tmp_path: Path, code: int, make_ok: bool, says: str) -> None:
    # The target runs whatever BROWNOUT names: a stand-in that exits as `brownout demo` would.
    fake = tmp_path / "brownout"
    fake.write_text(f"#!/bin/sh\necho \"ran: $*\"\nexit {code}\n")
    fake.chmod(0o755)
    result = subprocess.run(["make", "-s", "-C", str(REPO), "demo-run", f"BROWNOUT={fake}", "DEMO_ARGS=--time-scale 0.3"],
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert "ran: demo --time-scale 0.3" in result.stdout
    assert says in output
    if make_ok:
        assert result.returncode == 0 and "make: ***" not in output and "Error" not in output
    else:
        assert result.returncode != 0 and says in result.stderr
