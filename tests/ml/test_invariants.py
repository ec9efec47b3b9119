"""Per-response invariants: shape, finite numbers, model versions, id echo; counted per window as SLIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from brownout.experiment.steady import Predictions, SteadyState
from brownout.records import RequestRecord
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.golden import GoldenCase, ProbeResult
from brownout.steady.invariants import (
    MODEL_VERSION,
    NON_FINITE,
    SCHEMA,
    SHAPE,
    Invariants,
    shape_mismatches,
)


def oip(scores: list[float], shape: list[int]) -> dict[str, Any]:
    return {"model_name": "fraud", "model_version": "fraud-hgb-1", "id": "r1",
            "outputs": [{"name": "score", "datatype": "FP64", "shape": shape, "data": scores}]}


def test_shape_must_match_data_length() -> None:
    assert shape_mismatches(oip([0.1, 0.2], [2])) == ()
    assert shape_mismatches({"outputs": [{"shape": [2, 2], "data": [[1, 2], [3, 4]]}]}) == ()
    [problem] = shape_mismatches(oip([0.1, 0.2], [3]))
    assert problem == "$.outputs[0] (score): shape [3] holds 3 values, data has 2"
    assert shape_mismatches({"shape": [-1], "data": [1]}) == ()  # -1: a dynamic size, nothing to compare
    assert shape_mismatches({"shape": "3", "data": [1]}) == ()   # not a tensor


def test_model_versions_allow_patterns() -> None:
    inv = Invariants.from_predictions(Predictions(model_versions=("fraud-hgb-*",)))
    ok = inv.check(json.dumps(oip([0.1], [1])).encode())
    assert ok.valid and ok.version == "fraud-hgb-1"
    skewed = inv.check(json.dumps({**oip([0.1], [1]), "model_version": "fraud-lr-0"}).encode())
    assert skewed.violations == (MODEL_VERSION,) and skewed.problem == "model version 'fraud-lr-0' not allowed"
    missing = inv.check(b'{"score": 0.1}')
    assert missing.violations == (MODEL_VERSION,) and missing.problem == "no model version"
    # Without an allowed set, versions are not checked at all.
    assert Invariants.from_predictions(Predictions()).check(b'{"model_version": "x"}').valid


def test_each_broken_invariant_has_its_category() -> None:
    inv = Invariants.from_predictions(Predictions.model_validate({"schema": ["$.score"], "score": "$.score"}))
    assert inv.check(b"<html>").violations == (SCHEMA,)
    assert inv.check(b'{"x": 1}').violations == (SCHEMA,)
    nan = inv.check(b'{"score": NaN}')
    assert nan.violations == (NON_FINITE,) and not nan.strict_json
    both = inv.check(json.dumps({"score": 1, **oip([1.0], [4])}).encode())
    assert both.violations == (SHAPE,)


def test_echo_compares_request_and_response_ids() -> None:
    inv = Invariants.from_predictions(Predictions.model_validate({
        "golden": str(Path(__file__).parent.parent.parent / "experiments/data/golden.jsonl"), "score": "$.score",
        "echo": {"request": "$.transaction_id", "response": "$.transaction_id"}}))
    assert inv.echo_problem({"transaction_id": "T1"}, b'{"transaction_id": "T1"}') is None
    assert inv.echo_problem({"transaction_id": "T1"}, b'{"transaction_id": "T2"}') == "$.transaction_id = 'T2', sent 'T1'"
    assert inv.echo_problem({"transaction_id": "T1"}, b'{"score": 1}') == "$.transaction_id missing (sent 'T1')"
    assert inv.echo_problem({"other": 1}, b'{}') is None  # nothing sent to echo: not checked


def test_echo_needs_a_golden_set() -> None:
    with pytest.raises(ValidationError, match="echo needs a golden set"):
        Predictions.model_validate({"echo": {"request": "$.id", "response": "$.id"}})


def _record(t: float, body: dict[str, Any]) -> RequestRecord:
    return RequestRecord(scheduled_at=t, latency_s=0.01, status=200, body=json.dumps(body).encode())


def test_checker_turns_violations_into_rate_slis_naming_the_fault(tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_text(json.dumps({"body": {"id": "a"}, "expected": 0.5}) + "\n")
    steady = SteadyState.model_validate({"window": 1, "predictions": {
        "golden": str(golden), "score": "$.score", "model_versions": ["v1"], "max_invalid_rate": 0.1,
        "echo": {"request": "$.id", "response": "$.id"}}})
    checker = SteadyStateChecker(steady)
    for i in range(10):  # window 0: all fine
        checker.feed(_record(i / 10, {"id": "a", "score": 0.5, "model_version": "v1"}))
    for i in range(10):  # window 1: 3 of 10 answered by another version
        checker.feed(_record(1 + i / 10, {"id": "a", "score": 0.5, "model_version": "v0" if i < 3 else "v1"}))
    case = GoldenCase(line=1, body={"id": "a"}, expected=0.5)
    checker.feed_probe(ProbeResult(0.5, case, 200, 0.01, b'{"id": "a", "score": 0.5}'))
    checker.feed_probe(ProbeResult(1.5, case, 200, 0.01, b'{"id": "b", "score": 0.5}'))  # crossed
    w0 = checker.close_window(0, phase="baseline")
    w1 = checker.close_window(1, phase="method", active_faults=["model_version_skew@model-api"])
    assert w0.ok and w0.quality.violations == ()
    failed = {v.sli: v for v in w1.verdicts if not v.ok}
    assert set(failed) == {"valid_responses", "model_version_skew_rate", "echo_mismatch_rate"}
    skew = failed["model_version_skew_rate"]
    assert (skew.value, skew.bound, skew.comparison) == (pytest.approx(0.3), 0.1, "<=")
    assert skew.active_faults == ("model_version_skew@model-api",)
    assert "window 1" in skew.message() and "model_version_skew@model-api" in skew.message()
    assert failed["echo_mismatch_rate"].value == 1.0
    assert w1.quality.as_dict()["violations"] == {MODEL_VERSION: 3}
    held = {v.sli for v in w1.verdicts if v.ok}
    assert {"schema_violation_rate", "non_finite_rate", "shape_mismatch_rate"} <= held
