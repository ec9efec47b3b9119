"""Feature store: Feast-like ``POST /get-online-features`` over the online snapshot.

Request (the Feast feature server's shape)::

    {"features": ["customer_stats:count_1d", "terminal_stats:risk_7d"],
     "entities": {"customer_id": ["C00001"], "terminal_id": ["T00002"]}}

Response, column-oriented like current Feast (one result per name in
``metadata.feature_names``, join keys first, each holding one value per entity row)::

    {"metadata": {"feature_names": ["customer_id", "terminal_id", "customer_stats:count_1d", ...]},
     "results": [{"values": [...], "statuses": ["PRESENT", ...], "event_timestamps": [...]}, ...]}

An unknown entity gives ``null`` with status ``NOT_FOUND``, as Feast does. ``GET /metrics``
counts requests and their latency (``metrics.py``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from faults.errors import InvalidInput

from .features import CUSTOMER_FEATURES, STORE_FEATURES, TERMINAL_FEATURES, CUSTOMER_VIEW, OnlineSnapshot
from .metrics import ServiceMetrics
from .tracing import install_tracing
from .web import MAX_BODY_BYTES, bad_json, invalid, read_json

JOIN_KEYS = ("customer_id", "terminal_id")
EPOCH_ZERO = "1970-01-01T00:00:00Z"
MAX_ROWS = 1000


def _parse(body: Any) -> tuple[list[str], dict[str, list[str]], int]:
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    features = body.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise InvalidInput("must be a non-empty list of 'view:feature' names", "features")
    unknown = [f for f in features if f not in STORE_FEATURES]
    if unknown:
        raise InvalidInput(f"unknown feature {unknown[0]!r}; known: {', '.join(STORE_FEATURES)}", "features")
    entities = body.get("entities")
    if not isinstance(entities, dict) or not entities:
        raise InvalidInput("must map join keys to lists of ids", "entities")
    rows = -1
    for key, ids in entities.items():
        if key not in JOIN_KEYS:
            raise InvalidInput(f"unknown join key {key!r}; known: {', '.join(JOIN_KEYS)}", f"entities.{key}")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_ROWS:
            raise InvalidInput(f"must be a list of at most {MAX_ROWS} string ids", f"entities.{key}")
        if rows not in (-1, len(ids)):
            raise InvalidInput("every join key needs the same number of ids", f"entities.{key}")
        rows = len(ids)
    for f in features:
        needed = "customer_id" if f.startswith(CUSTOMER_VIEW) else "terminal_id"
        if needed not in entities:
            raise InvalidInput(f"feature {f!r} needs join key {needed!r}", "entities")
    return features, entities, rows


def online_features(snapshot: OnlineSnapshot, body: Any) -> dict[str, Any]:
    """The Feast-like response for a request body; raises ``InvalidInput``."""
    features, entities, rows = _parse(body)
    names = [k for k in JOIN_KEYS if k in entities] + features
    results: list[dict[str, Any]] = [
        {"values": list(entities[k]), "statuses": ["PRESENT"] * rows, "event_timestamps": [EPOCH_ZERO] * rows}
        for k in JOIN_KEYS if k in entities
    ]
    lookups = {
        "customer_id": [snapshot.customer(i) for i in entities.get("customer_id", [])],
        "terminal_id": [snapshot.terminal(i) for i in entities.get("terminal_id", [])],
    }
    stamp = snapshot.event_timestamp
    for f in features:
        if f in CUSTOMER_FEATURES:
            found, column = lookups["customer_id"], CUSTOMER_FEATURES.index(f)
        else:
            found, column = lookups["terminal_id"], TERMINAL_FEATURES.index(f)
        values = [None if row is None else float(row[column]) for row in found]
        results.append({
            "values": values,
            "statuses": ["NOT_FOUND" if v is None else "PRESENT" for v in values],
            "event_timestamps": [EPOCH_ZERO if v is None else stamp for v in values],
        })
    return {"metadata": {"feature_names": names}, "results": results}


def create_app(snapshot: OnlineSnapshot) -> web.Application:
    async def get_online_features(request: web.Request) -> web.Response:
        try:
            body = await read_json(request)
        except InvalidInput as exc:
            return bad_json(exc)
        try:
            return web.json_response(online_features(snapshot, body))
        except InvalidInput as exc:
            return invalid(exc)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "features": len(STORE_FEATURES), "as_of": snapshot.event_timestamp})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    ServiceMetrics("feature_store").install(app)
    install_tracing(app, "brownout-demo-feature-store")
    app.router.add_post("/get-online-features", get_online_features)
    app.router.add_get("/health", health)
    app.router.add_get("/healthz", health)
    return app
