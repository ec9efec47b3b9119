"""nan_tensor, wrong_shape, score_corruption, schema_drift on model outputs."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from tests.faults.ml.shapes import CHAT, EMBED, FEAST_ROWS, MLFLOW, OIP, PATHS, TF, raw


async def test_nan_tensor_writes_bare_tokens_into_oip_outputs(apply: Any) -> None:
    out = await apply("nan_tensor", {"fraction": 1.0, "outputs": ["probabilities"]}, raw(OIP), path=PATHS["oip"])
    assert b'"data":[NaN,NaN,NaN,NaN]' in out.body
    assert out.doc["outputs"][1]["data"] == [0, 1]  # the other tensor untouched
    assert out.doc["id"] == "42"


@pytest.mark.parametrize(("value", "token"), [("infinity", b"Infinity"), ("-infinity", b"-Infinity"),
                                              ("null", b"null"), ("string", b'"NaN"')])
async def test_nan_tensor_values(apply: Any, value: str, token: bytes) -> None:
    out = await apply("nan_tensor", {"value": value, "fraction": 0.1}, raw(MLFLOW), path=PATHS["mlflow"])
    assert out.body.count(token) == 1  # a tenth of three numbers is still one


async def test_nan_tensor_fraction_is_seeded_and_hits_nested_predictions(apply: Any) -> None:
    a = await apply("nan_tensor", {"fraction": 0.5}, raw(TF), path=PATHS["tf"], seed=4)
    b = await apply("nan_tensor", {"fraction": 0.5}, raw(TF), path=PATHS["tf"], seed=4)
    assert a.body == b.body
    flat = [v for row in a.doc["predictions"] for v in row]
    assert sum(math.isnan(v) for v in flat) == 3


async def test_nan_tensor_in_embeddings_and_user_paths(apply: Any) -> None:
    out = await apply("nan_tensor", {"fraction": 1.0}, raw(EMBED), path=PATHS["embed"])
    assert all(math.isnan(v) for v in out.doc["data"][0]["embedding"])
    out = await apply("nan_tensor", {"paths": ["$.result.p"], "fraction": 1.0}, {"result": {"p": 0.3, "q": 1}},
                      path="/custom")
    assert math.isnan(out.doc["result"]["p"]) and out.doc["result"]["q"] == 1


async def test_output_kinds_leave_other_bodies_byte_identical(apply: Any) -> None:
    for kind, params in [("nan_tensor", {}), ("wrong_shape", {}), ("score_corruption", {})]:
        body = raw({"status": "ok"})
        assert (await apply(kind, params, body, path="/custom")).body == body


@pytest.mark.parametrize(("mode", "data", "shape"), [
    ("truncate", [0.9, 0.1, 0.2], [2, 2]), ("extend", [0.9, 0.1, 0.2, 0.8, 0.8], [2, 2]),
    ("shape", [0.9, 0.1, 0.2, 0.8], [3, 2]),
])
async def test_wrong_shape_on_oip(apply: Any, mode: str, data: list, shape: list) -> None:
    out = await apply("wrong_shape", {"mode": mode, "outputs": ["probabilities"]}, raw(OIP), path=PATHS["oip"])
    tensor = out.doc["outputs"][0]
    assert tensor["data"] == data and tensor["shape"] == shape
    assert math.prod(tensor["shape"]) != len(tensor["data"])


@pytest.mark.parametrize(("mode", "count", "expected"), [
    ("truncate", 2, [[0.9, 0.1]]), ("extend", 1, [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.6, 0.4]]),
    ("shape", 1, [0.9, 0.1, 0.3, 0.7, 0.6, 0.4]),
])
async def test_wrong_shape_on_predictions(apply: Any, mode: str, count: int, expected: list) -> None:
    out = await apply("wrong_shape", {"mode": mode, "count": count}, raw(TF), path=PATHS["tf"])
    assert out.doc["predictions"] == expected


async def test_wrong_shape_changes_the_embedding_dimension(apply: Any) -> None:
    out = await apply("wrong_shape", {"count": 2}, raw(EMBED), path=PATHS["embed"])
    assert out.doc["data"][0]["embedding"] == [0.5, -0.25]


@pytest.mark.parametrize(("params", "expected"), [
    ({"mode": "power", "exponent": 2}, [0.01, 0.49, 0.16]),
    ({"mode": "affine", "scale": 2, "offset": 0.1}, [0.3, 1.5, 0.9]),
    ({"mode": "affine", "scale": 2, "offset": 0.1, "clip": True}, [0.3, 1.0, 0.9]),
    ({"mode": "constant", "value": 0.02}, [0.02, 0.02, 0.02]),
    ({"mode": "invert"}, [0.9, 0.3, 0.6]),
])
async def test_score_corruption_transforms(apply: Any, params: dict, expected: list) -> None:
    out = await apply("score_corruption", params, raw(MLFLOW), path=PATHS["mlflow"])
    assert out.doc["predictions"] == pytest.approx(expected)


async def test_score_power_keeps_the_order(apply: Any) -> None:
    out = await apply("score_corruption", {"exponent": 3}, raw(MLFLOW), path=PATHS["mlflow"])
    new = out.doc["predictions"]
    assert sorted(range(3), key=new.__getitem__) == sorted(range(3), key=MLFLOW["predictions"].__getitem__)


async def test_label_swap_reverses_oip_class_rows_and_flips_class_ids(apply: Any) -> None:
    out = await apply("score_corruption", {"mode": "label_swap"}, raw(OIP), path=PATHS["oip"])
    assert out.doc["outputs"][0]["data"] == [0.1, 0.9, 0.8, 0.2]
    assert out.doc["outputs"][1]["data"] == [1, 0]


async def test_label_swap_with_named_labels(apply: Any) -> None:
    body = {"predictions": [{"label": "fraud", "score": 0.9}, {"label": "legit", "score": 0.2}]}
    out = await apply("score_corruption", {"mode": "label_swap", "labels": {"fraud": "legit"}}, body, path="/invocations")
    assert [p["label"] for p in out.doc["predictions"]] == ["legit", "fraud"]
    assert [p["score"] for p in out.doc["predictions"]] == [0.9, 0.2]
    fault = build_fault("score_corruption", {"mode": "label_swap", "labels": {"a": "b"}})
    assert build_fault("score_corruption", fault.params()) == fault and hash(fault)


@pytest.mark.parametrize(("shape", "path", "params", "check"), [
    (TF, "tf", {}, lambda d: "predictions_v2" in d and "predictions" not in d),
    (TF, "tf", {"new_name": "outputs"}, lambda d: list(d) == ["outputs"]),
    (OIP, "oip", {}, lambda d: [o["name"] for o in d["outputs"]] == ["probabilities_v2", "label_v2"]),
    (CHAT, "chat", {}, lambda d: d["choices"][0]["message"] == {"role": "assistant", "content_v2": "Hello"}),
    (FEAST_ROWS, "feast", {}, lambda d: d["metadata"]["feature_names"][1] == "conv_rate_v2"),
    (TF, "tf", {"mode": "drop"}, lambda d: d == {}),
    (CHAT, "chat", {"mode": "drop", "path": "$.choices[*].finish_reason"}, lambda d: "finish_reason" not in d["choices"][0]),
    (OIP, "oip", {"mode": "dtype"}, lambda d: d["outputs"][0]["datatype"] == "BYTES" and d["outputs"][0]["data"][0] == "0.9"),
    (OIP, "oip", {"mode": "dtype", "datatype": "FP64"}, lambda d: d["outputs"][0]["datatype"] == "FP64"
     and d["outputs"][0]["data"][0] == 0.9),
    (MLFLOW, "mlflow", {"mode": "dtype"}, lambda d: d["predictions"] == ["0.1", "0.7", "0.4"]),
    (CHAT, "chat", {"mode": "dtype"}, lambda d: d["usage"]["total_tokens"] == "11"),
])
async def test_schema_drift(apply: Any, shape: dict, path: str, params: dict, check: Any) -> None:
    out = await apply("schema_drift", params, raw(shape), path=PATHS[path])
    assert check(out.doc), out.doc


async def test_schema_drift_rename_keeps_key_order(apply: Any) -> None:
    body = {"a": 1, "score": 0.5, "z": 2}
    out = await apply("schema_drift", {"path": "$.score", "new_name": "proba"}, body, path="/x")
    assert list(out.doc) == ["a", "proba", "z"]


async def test_schema_drift_missing_field_is_byte_identical(apply: Any) -> None:
    body = raw({"other": 1})
    assert (await apply("schema_drift", {"path": "$.score"}, body, path="/x")).body == body


@pytest.mark.parametrize(("kind", "params", "field"), [
    ("nan_tensor", {"value": "zero"}, "params.value"),
    ("nan_tensor", {"fraction": 1.5}, "params.fraction"),
    ("wrong_shape", {"count": 0}, "params.count"),
    ("wrong_shape", {"mode": "transpose"}, "params.mode"),
    ("score_corruption", {"exponent": 0}, "params.exponent"),
    ("score_corruption", {"labels": {"a": "b"}}, "params.labels"),
    ("score_corruption", {"paths": ["x"]}, "params.paths"),
    ("schema_drift", {"new_name": "x", "mode": "drop"}, "params.new_name"),
    ("schema_drift", {"datatype": "FLOAT"}, "params.datatype"),
    ("schema_drift", {"path": "score"}, "params.path"),
])
def test_validation_names_the_parameter(kind: str, params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault(kind, params)
    assert field in [e.field for e in err.value.errors]


def test_nan_tokens_round_trip_through_python_json() -> None:
    assert math.isnan(json.loads(b"[NaN]")[0])
