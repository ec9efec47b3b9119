"""A bad config exits 3 and names the file, line and key of every error at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BROWNOUT

BAD = """\
admin:
  listen: 127.0.0.1:8999
  token: ${BROWNOUT_TEST_UNSET}
routes:
  - name: api
    listen: 127.0.0.1:18999
    upstream: ftp://model
  - name: cache
    kind: tcp
    listen: 127.0.0.1:notaport
    upstream: redis:6379
    colour: red
faults:
  - {type: latency, route: api, params: {delay_ms: -3}}
  - {type: latency, route: nowhere}
"""


def test_bad_config_exits_3_naming_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "brownout.yaml"
    config.write_text(BAD)
    result = subprocess.run([*BROWNOUT, "proxy", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    expected = [
        f"{config}:3:10: admin.token: environment variable BROWNOUT_TEST_UNSET is not set",
        f"{config}:7:5: routes[0].upstream: upstream must be http://host:port",
        f"{config}:10:5: routes[1].listen: bad port in '127.0.0.1:notaport'",
        f"{config}:12:5: routes[1].colour: unknown key",
        f"{config}:14:42: faults[0].params.delay_ms: must be >= 0",
        f"{config}:15:21: faults[1].route: unknown route 'nowhere'",
    ]
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)


def test_missing_config_file_exits_3(tmp_path: Path) -> None:
    result = subprocess.run([*BROWNOUT, "proxy", "--config", str(tmp_path / "nope.yaml")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3 and "file not found" in result.stderr


NON_FINITE = """\
fault_ttl:
  default: .nan
  max: 1e400
drain_grace: 99999999999999999999999999999999999999999999h
routes:
  - name: api
    listen: 127.0.0.1:18998
    upstream: http://127.0.0.1:9
    timeout: .inf
faults:
  - {type: latency, route: api, params: {delay_ms: .nan}}
  - {type: latency, route: api, match: {first_n: 99999999999999999999999}}
"""


def test_non_finite_and_huge_numbers_in_the_config_are_named(tmp_path: Path) -> None:
    """YAML has .nan and .inf; a NaN lease or timeout passes every range check, so it is refused here."""
    config = tmp_path / "brownout.yaml"
    config.write_text(NON_FINITE)
    result = subprocess.run([*BROWNOUT, "proxy", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    for key in ("fault_ttl.default", "fault_ttl.max", "drain_grace", "routes[0].timeout",
                "faults[0].params.delay_ms", "faults[1].match.first_n"):
        assert f": {key}: " in result.stderr, (key, result.stderr)
