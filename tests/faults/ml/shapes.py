"""Sample bodies of each protocol, written with upstream-style spacing (so re-serialising shows)."""

from __future__ import annotations

import json
from typing import Any


def raw(doc: Any) -> bytes:
    """Pretty-ish upstream bytes: any rewrite (compact) is visibly different from these."""
    return json.dumps(doc, indent=1).encode()


OIP = {"model_name": "fraud", "model_version": "3", "id": "42",
       "outputs": [{"name": "probabilities", "shape": [2, 2], "datatype": "FP32", "data": [0.9, 0.1, 0.2, 0.8]},
                   {"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 1]}]}
TF = {"predictions": [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]}
MLFLOW = {"predictions": [0.1, 0.7, 0.4]}
CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m-1",
        "system_fingerprint": "fp_a", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                                    "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}
EMBED = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 0.125, 1.0]}],
         "model": "emb-1", "usage": {"prompt_tokens": 2, "total_tokens": 2}}
# Row-oriented (the documented example): one result per entity row, join key first.
FEAST_ROWS = {
    "metadata": {"feature_names": ["driver_id", "conv_rate", "avg_daily_trips", "acc_rate"]},
    "results": [
        {"values": [1001, 0.7, 308, 0.87], "statuses": ["PRESENT"] * 4,
         "event_timestamps": ["1970-01-01T00:00:00Z", "2021-12-31T23:00:00Z", "2021-12-31T23:00:00Z",
                              "2021-12-31T23:00:00Z"]},
        {"values": [1002, 0.4, 120, 0.55], "statuses": ["PRESENT"] * 4,
         "event_timestamps": ["1970-01-01T00:00:00Z", "2021-12-31T22:00:00Z", "2021-12-31T22:00:00Z",
                              "2021-12-31T22:00:00Z"]},
    ],
}
# Column-oriented (the current serving model): one result per feature, a value per entity.
FEAST_COLUMNS = {
    "metadata": {"feature_names": ["driver_id", "conv_rate", "acc_rate"]},
    "results": [
        {"values": [1001, 1002], "statuses": ["PRESENT", "PRESENT"],
         "event_timestamps": ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]},
        {"values": [0.7, 0.4], "statuses": ["PRESENT", "PRESENT"],
         "event_timestamps": ["2021-12-31T23:00:00Z", "2021-12-31T22:00:00Z"]},
        {"values": [0.87, 0.55], "statuses": ["PRESENT", "PRESENT"],
         "event_timestamps": ["2021-12-31T23:00:00Z", "2021-12-31T22:00:00Z"]},
    ],
}

PATHS = {
    "oip": "/v2/models/fraud/infer",
    "tf": "/v1/models/fraud:predict",
    "mlflow": "/invocations",
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embed": "/v1/embeddings",
    "feast": "/get-online-features",
}
