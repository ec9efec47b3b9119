"""missing_features, default_features, stale_features on Feast responses and model requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from faults.base import BodyEdit, Hook
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from tests.faults.ml.shapes import FEAST_COLUMNS, FEAST_ROWS, MLFLOW, PATHS, raw

FEAST = PATHS["feast"]


def column(doc: dict[str, Any], name: str, key: str = "values") -> list[Any]:
    """A feature's values (or statuses/timestamps) across entity rows, in either orientation."""
    names = doc["metadata"]["feature_names"]
    i = names.index(name)
    if len(doc["results"]) == len(names):
        return doc["results"][i][key]
    return [r[key][i] for r in doc["results"]]


@pytest.mark.parametrize("shape", [FEAST_ROWS, FEAST_COLUMNS], ids=["rows", "columns"])
@pytest.mark.parametrize(("mode", "status"), [("not_found", "NOT_FOUND"), ("null", "NULL_VALUE")])
async def test_missing_features_nulls_values_with_a_status(apply: Any, shape: dict, mode: str, status: str) -> None:
    out = await apply("missing_features", {"mode": mode, "features": ["driver_hourly_stats:conv_rate"]}, raw(shape),
                      path=FEAST)
    assert column(out.doc, "conv_rate") == [None, None]
    assert column(out.doc, "conv_rate", "statuses") == [status, status]
    assert column(out.doc, "acc_rate") == column(shape, "acc_rate")  # other features untouched
    assert out.edit == BodyEdit.REWRITE


@pytest.mark.parametrize("shape", [FEAST_ROWS, FEAST_COLUMNS], ids=["rows", "columns"])
async def test_missing_features_default_spares_join_keys(apply: Any, shape: dict) -> None:
    out = await apply("missing_features", {}, raw(shape), path=FEAST)
    assert column(out.doc, "driver_id") == [1001, 1002]
    assert column(out.doc, "acc_rate") == [None, None]


@pytest.mark.parametrize("shape", [FEAST_ROWS, FEAST_COLUMNS], ids=["rows", "columns"])
async def test_missing_features_drop_removes_the_feature(apply: Any, shape: dict) -> None:
    out = await apply("missing_features", {"mode": "drop", "features": ["acc_rate"]}, raw(shape), path=FEAST)
    assert "acc_rate" not in out.doc["metadata"]["feature_names"]
    assert column(out.doc, "conv_rate") == column(shape, "conv_rate")
    for result in out.doc["results"]:
        assert len({len(result[k]) for k in ("values", "statuses", "event_timestamps")}) == 1


async def test_missing_features_fraction_is_seeded(apply: Any) -> None:
    params = {"fraction": 0.25}
    a = await apply("missing_features", params, raw(FEAST_ROWS), path=FEAST, seed=9)
    b = await apply("missing_features", params, raw(FEAST_ROWS), path=FEAST, seed=9)
    assert a.body == b.body
    nulls = sum(v is None for r in a.doc["results"] for v in r["values"])
    assert nulls == 2  # a quarter of 6 feature cells, rounded


async def test_no_match_is_byte_identical(apply: Any) -> None:
    body = raw(FEAST_ROWS)
    out = await apply("missing_features", {"features": ["nope"]}, body, path=FEAST)
    assert out.body == body
    out = await apply("default_features", {}, raw(MLFLOW), path="/invocations")  # not a Feast body
    assert out.body == raw(MLFLOW)


async def test_missing_features_at_user_paths(apply: Any) -> None:
    body = {"features": {"amount": 12.5, "country": "FR"}}
    out = await apply("missing_features", {"paths": ["$.features.amount"]}, body, path="/custom")
    assert out.doc == {"features": {"amount": None, "country": "FR"}}
    out = await apply("missing_features", {"mode": "drop", "paths": ["$.features.country"]}, body, path="/custom")
    assert out.doc == {"features": {"amount": 12.5}}


@pytest.mark.parametrize(("body", "params", "expected"), [
    ({"instances": [{"amount": 1, "age": 30}, {"amount": 2, "age": 40}]}, {"mode": "drop", "features": ["age"]},
     {"instances": [{"amount": 1}, {"amount": 2}]}),
    ({"dataframe_records": [{"amount": 1, "age": 30}]}, {"mode": "null", "features": ["amount"]},
     {"dataframe_records": [{"amount": None, "age": 30}]}),
    ({"dataframe_split": {"columns": ["amount", "age"], "data": [[1, 30], [2, 40]]}}, {"mode": "drop", "features": ["amount"]},
     {"dataframe_split": {"columns": ["age"], "data": [[30], [40]]}}),
    ({"dataframe_split": {"columns": ["amount", "age"], "data": [[1, 30], [2, 40]]}}, {"features": ["age"]},
     {"dataframe_split": {"columns": ["amount", "age"], "data": [[1, None], [2, None]]}}),
    ({"inputs": [{"name": "amount", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]},
                 {"name": "age", "shape": [2], "datatype": "INT64", "data": [30, 40]}]},
     {"mode": "drop", "features": ["age"]},
     {"inputs": [{"name": "amount", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}]}),
    ({"inputs": {"amount": [1, 2], "age": [30, 40]}}, {"features": ["amount"]},
     {"inputs": {"amount": [None, None], "age": [30, 40]}}),
])
async def test_missing_features_in_the_model_request(make_exchange: Any, make_body: Any, drain: Any,
                                                     body: dict, params: dict, expected: dict) -> None:
    fault = build_fault("missing_features", {"direction": "request", **params})
    data = json.dumps(body).encode()
    ex = make_exchange(request_headers={"Content-Type": "application/json", "Content-Length": str(len(data))})
    assert fault.hooks() == {Hook.WRAP_REQUEST_BODY}  # the response is left alone in request mode
    assert fault.request_edit(ex) == BodyEdit.REWRITE
    out = b"".join(await drain(fault.wrap_request_body(ex, make_body(data[:5], data[5:]))))
    assert json.loads(out) == expected


async def test_request_mode_leaves_positional_rows_byte_identical(make_exchange: Any, make_body: Any, drain: Any) -> None:
    fault = build_fault("missing_features", {"direction": "request", "mode": "drop"})
    data = b'{"instances": [[1, 2], [3, 4]]}'
    ex = make_exchange(request_headers={"Content-Type": "application/json"})
    assert b"".join(await drain(fault.wrap_request_body(ex, make_body(data)))) == data


@pytest.mark.parametrize("shape", [FEAST_ROWS, FEAST_COLUMNS], ids=["rows", "columns"])
async def test_default_features_fills_defaults_but_says_present(apply: Any, shape: dict) -> None:
    broken = json.loads(raw(shape))
    for result in broken["results"]:  # even a real miss is reported as present
        result["statuses"] = ["NOT_FOUND" if s else s for s in result["statuses"]]
    out = await apply("default_features", {"features": ["conv_rate"], "default_value": 0.0}, raw(broken), path=FEAST)
    assert column(out.doc, "conv_rate") == [0.0, 0.0]
    assert column(out.doc, "conv_rate", "statuses") == ["PRESENT", "PRESENT"]
    assert column(out.doc, "acc_rate") == column(shape, "acc_rate")


@pytest.mark.parametrize("shape", [FEAST_ROWS, FEAST_COLUMNS], ids=["rows", "columns"])
@pytest.mark.parametrize("status", ["OUTSIDE_MAX_AGE", "PRESENT"])
async def test_stale_features_moves_timestamps_back(apply: Any, shape: dict, status: str) -> None:
    out = await apply("stale_features", {"age_s": 7200, "status": status, "features": ["conv_rate"]}, raw(shape),
                      path=FEAST)
    assert column(out.doc, "conv_rate", "event_timestamps") == ["2021-12-31T21:00:00Z", "2021-12-31T20:00:00Z"]
    assert column(out.doc, "conv_rate", "statuses") == [status, status]
    assert column(out.doc, "conv_rate") == column(shape, "conv_rate")  # values kept: silently old
    assert column(out.doc, "driver_id", "event_timestamps") == column(shape, "driver_id", "event_timestamps")


async def test_stale_features_at_user_paths(apply: Any) -> None:
    body = {"features": {"amount": 3}, "as_of": "2024-05-01T12:00:00+00:00", "ts": 1714564800}
    out = await apply("stale_features", {"age_s": 86400, "paths": ["$.as_of", "$.ts"]}, body, path="/custom")
    assert out.doc["as_of"] == "2024-04-30T12:00:00+00:00" and out.doc["ts"] == 1714478400


@pytest.mark.parametrize(("kind", "params", "field"), [
    ("missing_features", {"fraction": 0}, "params.fraction"),
    ("missing_features", {"mode": "vanish"}, "params.mode"),
    ("missing_features", {"paths": ["nope"]}, "params.paths"),
    ("default_features", {"default_value": [1]}, "params.default_value"),
    ("stale_features", {"age_s": 0}, "params.age_s"),
    ("stale_features", {"status": "OLD"}, "params.status"),
    ("stale_features", {"max_age": 3}, "params.max_age"),
])
def test_validation_names_the_parameter(kind: str, params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault(kind, params)
    assert field in [e.field for e in err.value.errors]
