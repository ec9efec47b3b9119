"""Report tests: the runner's stage (a real model server behind a real proxy) and `brownout report`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BROWNOUT, REPO
from tests.runner.conftest import stage  # noqa: F401  (re-exported so pytest finds the fixture)

def brownout_report(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BROWNOUT, "report", *map(str, args)], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
