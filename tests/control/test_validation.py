"""One converter of validation errors: the same mistake reads the same in fault params, admin
bodies, the proxy's config file and experiment files (``brownout load --sla``: tests/load/test_command.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from brownout.experiment.loader import load_experiment
from faults.catalogue import build_fault
from faults.errors import InvalidInput, InvalidInputs
from proxy.config import load_config
from proxy.fault_requests import FaultRequest, parse_body

EXPERIMENT = """\
version: 1
title: typo
target: {url: "http://127.0.0.1:9/"}
load: {shape: constant, rate: 1, duration: 1s}
steady_state:
  windw: 5s
  sla: {latency_p99_ms: -3}
"""
CONFIG = """\
routes:
  - name: api
    listen: 127.0.0.1:18999
    upstreem: http://127.0.0.1:9
"""


def _errors(call: object, *args: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as err:
        call(*args)  # type: ignore[operator]
    exc = err.value
    return {e.field or "": e.message for e in (exc.errors if isinstance(exc, InvalidInputs) else [exc])}


def test_an_unknown_key_reads_the_same_everywhere_with_a_suggestion(tmp_path: Path) -> None:
    params = _errors(build_fault, "latency", {"delay_mss": 5})
    assert params == {"params.delay_mss": "unknown key (did you mean 'delay_ms'?)"}

    body = _errors(parse_body, FaultRequest, {"type": "latency", "route": "api", "seeed": 1})
    assert body == {"seeed": "unknown key (did you mean 'seed'?)"}

    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    experiment = _errors(load_experiment, tmp_path / "exp.yaml")
    assert experiment["steady_state.windw"] == "unknown key (did you mean 'window'?)"

    (tmp_path / "proxy.yaml").write_text(CONFIG)
    config = _errors(load_config, tmp_path / "proxy.yaml")
    assert config["routes[0].upstreem"] == "unknown key (did you mean 'upstream'?)"

    far = _errors(build_fault, "latency", {"colour": "red"})
    assert far == {"params.colour": "unknown key"}  # nothing close: no guess


def test_bounds_and_missing_keys_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    assert _errors(load_experiment, tmp_path / "exp.yaml")["steady_state.sla.latency_p99_ms"] == "must be >= 0, got -3"
    assert _errors(parse_body, FaultRequest, {"route": "api"}) == {"type": "required key is missing"}

