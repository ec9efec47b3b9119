"""The capacity kinds as users meet them: the catalogue, the experiment JSON Schema, experiment-file errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from brownout.experiment import load_experiment
from faults.errors import InvalidInputs
from tests.conftest import BROWNOUT, REPO
from tests.control.test_experiment import GOOD, copy_good


def test_catalogue_lists_the_capacity_kinds_with_their_parameters() -> None:
    out = subprocess.run([*BROWNOUT, "faults", "catalogue", "--json"], cwd=REPO, capture_output=True, check=True,
                         text=True).stdout
    kinds = {entry["type"]: entry for entry in json.loads(out)}
    assert {"requests_per_minute", "tokens_per_minute", "burst", "key", "max_keys"} <= set(kinds["rate_limit"]["params"])
    assert {"max_concurrent", "max_queue", "max_queue_ms", "style"} <= set(kinds["concurrency_limit"]["params"])
    assert {"stall_every_events", "preempt_probability", "stall_distribution"} <= set(kinds["stream"]["params"])
    assert "429" in kinds["rate_limit"]["summary"]


def test_the_experiment_schema_names_them() -> None:
    out = subprocess.run([*BROWNOUT, "schema"], cwd=REPO, capture_output=True, check=True, text=True).stdout
    assert '"rate_limit"' in out and '"concurrency_limit"' in out


def test_an_experiment_step_with_a_probability_is_refused_where_it_is_written(tmp_path: Path) -> None:
    match_line = next(i for i, line in enumerate(GOOD.read_text().splitlines(), 1) if "probability: 0.5" in line)
    path = copy_good(tmp_path, ("fault: latency", "fault: rate_limit"),
                     ("params: {delay_ms: 400, jitter_ms: 100}", "params: {requests_per_minute: 600}"))
    try:
        load_experiment(path, env={})
    except InvalidInputs as raised:
        errors = [(e.field, e.line) for e in raised.errors]
    else:
        raise AssertionError("a rate_limit step with a probability match was accepted")
    assert errors == [("method[0].match.probability", match_line)]
    fine = copy_good(tmp_path, ("fault: latency", "fault: rate_limit"),
                     ("params: {delay_ms: 400, jitter_ms: 100}", "params: {requests_per_minute: 600}"),
                     ("probability: 0.5", "methods: [POST]"))
    assert load_experiment(fine, env={}).method[0].build().kind == "rate_limit"  # type: ignore[union-attr]
