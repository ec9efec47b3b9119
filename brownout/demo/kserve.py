"""KServe v2 / Open Inference Protocol shapes for the fraud model.

Two input forms on ``POST /v2/models/fraud/infer``:
- transaction fields as parallel tensors, shape ``[N]``: ``transaction_id``, ``customer_id``,
  ``terminal_id``, ``timestamp`` (BYTES) and ``amount`` (FP32/FP64) — the full path
  (cache, feature store, worker) as ``/predict`` takes;
- ``features``, FP32/FP64 ``[N, 15]`` in ``FEATURE_NAMES`` order — straight to the worker.

Outputs: ``score`` (FP64 ``[N]``) and ``fraud`` (BOOL ``[N]``); ``parameters.degraded`` says
whether any row fell back to default features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from faults.errors import InvalidInput

from .features import FEATURE_NAMES, N_FEATURES
from .schema import Transaction, parse_transaction

MODEL_NAME = "fraud"
TXN_FIELDS = ("transaction_id", "customer_id", "terminal_id", "amount", "timestamp")
MAX_ROWS = 256


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    transactions: tuple[Transaction, ...] = ()
    features: tuple[tuple[float, ...], ...] = ()


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [v for item in data for v in _flatten(item)]
    return [data]


def _tensor(spec: Any, index: int) -> tuple[str, list[int], list[Any]]:
    where = f"inputs[{index}]"
    if not isinstance(spec, dict):
        raise InvalidInput("must be an object with name, shape, datatype and data", where)
    name, shape, data = spec.get("name"), spec.get("shape"), spec.get("data")
    if not isinstance(name, str):
        raise InvalidInput("is required", f"{where}.name")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise InvalidInput("must be a list of non-negative integers", f"{where}.shape")
    if not isinstance(spec.get("datatype"), str):
        raise InvalidInput("is required", f"{where}.datatype")
    flat = _flatten(data) if isinstance(data, list) else None
    size = 1
    for d in shape:
        size *= d
    if flat is None or len(flat) != size:
        raise InvalidInput(f"must hold {size} elements for shape {shape}", f"{where}.data")
    return name, shape, flat


def parse_infer(body: Any) -> InferRequest:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput("must be a non-empty list of tensors", "inputs")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("must be a string", "id")
    tensors = {name: (shape, data) for name, shape, data in (_tensor(s, i) for i, s in enumerate(body["inputs"]))}
    if "features" in tensors:
        shape, data = tensors["features"]
        if len(shape) != 2 or shape[1] != N_FEATURES or not 0 < shape[0] <= MAX_ROWS:
            raise InvalidInput(f"features must have shape [N, {N_FEATURES}] with 1 <= N <= {MAX_ROWS}", "inputs")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in data):
            raise InvalidInput("features must be finite numbers", "inputs")
        rows = tuple(tuple(float(v) for v in data[r * N_FEATURES:(r + 1) * N_FEATURES]) for r in range(shape[0]))
        return InferRequest(id=request_id, features=rows)
    missing = [f for f in TXN_FIELDS if f not in tensors]
    if missing:
        raise InvalidInput(f"missing input tensor {missing[0]!r} (or give 'features')", "inputs")
    sizes = {len(tensors[f][1]) for f in TXN_FIELDS}
    if len(sizes) != 1 or not 0 < next(iter(sizes)) <= MAX_ROWS:
        raise InvalidInput(f"transaction tensors must have one equal length, 1 to {MAX_ROWS}", "inputs")
    n = sizes.pop()
    txns = tuple(parse_transaction({f: tensors[f][1][i] for f in TXN_FIELDS}) for i in range(n))
    return InferRequest(id=request_id, transactions=txns)


def infer_response(request: InferRequest, version: str, scores: list[float], fraud: list[bool],
                   degraded: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "model_version": version,
        "parameters": {"degraded": degraded},
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [len(scores)], "data": scores},
            {"name": "fraud", "datatype": "BOOL", "shape": [len(fraud)], "data": fraud},
        ],
    }
    if request.id is not None:
        body["id"] = request.id
    return body


def metadata(version: str) -> dict[str, Any]:
    return {
        "name": MODEL_NAME,
        "versions": [version],
        "platform": "sklearn",
        "inputs": [
            {"name": "transaction_id", "datatype": "BYTES", "shape": [-1]},
            {"name": "customer_id", "datatype": "BYTES", "shape": [-1]},
            {"name": "terminal_id", "datatype": "BYTES", "shape": [-1]},
            {"name": "amount", "datatype": "FP64", "shape": [-1]},
            {"name": "timestamp", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [-1]},
            {"name": "fraud", "datatype": "BOOL", "shape": [-1]},
        ],
        "parameters": {"feature_names": list(FEATURE_NAMES)},
    }
