"""The model API's scoring path: cache → feature store → GPU worker, with real degradation.

- A feature-store timeout, error or unreadable answer falls back to default features (the
  training means) and marks the prediction ``degraded``; so does a missing or non-numeric
  feature value. Degraded scores are never cached.
- The GPU worker runs as one or more replicas (``upstream.Upstream``: round robin, retries
  fail over to the next replica). When none answers within the retry budget (refused,
  reset, 5xx, timeout), the prediction falls back to a constant score (that of the average
  transaction) marked ``degraded``: the client still gets a fast 200, and only the quality
  checks can tell. A replica shedding load (429, or 503 with Retry-After) is back-pressure
  instead: the client gets 503 with the ``Retry-After`` passed on. A malformed answer is 502.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cache import CachedScore, ScoreCache
from .features import STORE_FEATURES, request_features
from .model import DemoModel
from .retry import BROKEN, OK, OVERLOADED, REJECTED, TIMEOUT, Attempt
from .schema import Transaction
from .upstream import Upstream, gave_up


@dataclass(frozen=True)
class Prediction:
    transaction_id: str
    score: float
    fraud: bool
    model_version: str
    degraded: bool
    degraded_reason: str | None = None
    cached: bool = False


class UpstreamFailure(Exception):
    """A dependency failed in a way the client must see (never a feature-store failure)."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class FeatureRows:
    values: list[list[float]]       # per transaction, in STORE_FEATURES order
    degraded: list[str | None]      # per transaction: why it fell back, or None


# Why a prediction fell back to default features: a short code per message prefix (the
# message says more; the code is a low-cardinality metric label).
_FALLBACK_PREFIXES = (
    ("feature store timeout", "timeout"),
    ("feature store answered", "error_status"),
    ("feature store unavailable", "unavailable"),
    ("feature store answer unreadable", "unreadable"),
    ("missing features", "missing_features"),
    ("gpu worker unavailable", "gpu_unavailable"),
)
FALLBACK_REASONS = tuple(code for _, code in _FALLBACK_PREFIXES) + ("other",)


def fallback_reason(message: str) -> str:
    """The code of a ``degraded_reason`` message (one of ``FALLBACK_REASONS``)."""
    for prefix, code in _FALLBACK_PREFIXES:
        if message.startswith(prefix):
            return code
    return "other"


def cache_key(model_version: str, txn: Transaction) -> str:
    digest = hashlib.sha256(json.dumps(txn.body(), sort_keys=True).encode()).hexdigest()[:32]
    return f"brownout-demo:score:{model_version}:{digest}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _columns(body: Any, n_rows: int) -> dict[str, tuple[list[Any], list[Any]]]:
    """feature name → (values, statuses) per row, from either Feast orientation."""
    names = body["metadata"]["feature_names"]
    results = body["results"]
    if len(results) == len(names) and all(len(r["values"]) == n_rows for r in results):
        return {n: (r["values"], r.get("statuses") or ["PRESENT"] * n_rows) for n, r in zip(names, results)}
    if len(results) == n_rows:  # row-oriented (older Feast): one result per entity row
        return {n: ([r["values"][i] for r in results],
                    [(r.get("statuses") or ["PRESENT"] * len(names))[i] for r in results])
                for i, n in enumerate(names)}
    raise ValueError("results match neither orientation")


class FeatureClient:
    def __init__(self, upstream: Upstream, defaults: list[float]) -> None:
        if len(defaults) != len(STORE_FEATURES):
            raise ValueError(f"need {len(STORE_FEATURES)} defaults, one per feature-store feature")
        self._upstream = upstream
        self._defaults = defaults

    def _fallback(self, n: int, reason: str) -> FeatureRows:
        return FeatureRows(values=[list(self._defaults) for _ in range(n)], degraded=[reason] * n)

    async def fetch(self, txns: list[Transaction], request_id: str) -> FeatureRows:
        request = {"features": list(STORE_FEATURES),
                   "entities": {"customer_id": [t.customer_id for t in txns],
                                "terminal_id": [t.terminal_id for t in txns]}}
        last = (await self._upstream.call(request, request_id))[-1]
        if last.outcome != OK:
            return self._fallback(len(txns), _feature_failure(last))
        try:
            return self._assemble(_columns(json.loads(last.body), len(txns)), len(txns))
        except (KeyError, TypeError, ValueError, IndexError):  # a truncated or corrupted answer
            return self._fallback(len(txns), "feature store answer unreadable")

    def _assemble(self, columns: dict[str, tuple[list[Any], list[Any]]], n_rows: int) -> FeatureRows:
        rows: list[list[float]] = []
        degraded: list[str | None] = []
        for i in range(n_rows):
            row, missing = [], []
            for j, name in enumerate(STORE_FEATURES):
                values, statuses = columns.get(name, ([None] * n_rows, ["NOT_FOUND"] * n_rows))
                value = _number(values[i]) if statuses[i] == "PRESENT" else None
                if value is None:
                    missing.append(name)
                row.append(self._defaults[j] if value is None else value)
            rows.append(row)
            degraded.append(f"missing features: {', '.join(missing)}" if missing else None)
        return FeatureRows(values=rows, degraded=degraded)


def _feature_failure(last: Attempt) -> str:
    if last.outcome == TIMEOUT:
        return "feature store timeout"
    if last.outcome != BROKEN and last.status is not None:
        return f"feature store answered {last.status}"
    return f"feature store unavailable: {last.error}"


def average_score(model: DemoModel) -> float:
    """The score of the average transaction (training means): the GPU fallback's constant."""
    return float(model.score(np.array([model.defaults]))[0])


@dataclass(frozen=True)
class Scores:
    values: list[float]
    degraded: str | None = None  # why these are the fallback score rather than the model's


class WorkerClient:
    def __init__(self, upstream: Upstream, fallback_score: float) -> None:
        self._upstream = upstream
        self.fallback_score = fallback_score

    async def score(self, instances: list[list[float]], request_id: str) -> Scores:
        attempts = await self._upstream.call({"instances": instances}, request_id)
        last = attempts[-1]
        if last.outcome == OVERLOADED:
            raise UpstreamFailure(503, "GPU worker overloaded", last.retry_after or "1")
        if last.outcome == REJECTED:
            raise UpstreamFailure(502, f"GPU worker answered {last.status}")
        if last.outcome == BROKEN:
            raise UpstreamFailure(502, "GPU worker answer unreadable")
        if last.outcome != OK:  # no replica answered within the budget: degrade, do not fail
            return Scores([self.fallback_score] * len(instances), f"gpu worker unavailable: {gave_up(attempts)}")
        try:
            body = json.loads(last.body)
        except ValueError:
            raise UpstreamFailure(502, "GPU worker answer unreadable") from None
        scores = body.get("scores") if isinstance(body, dict) else None
        if (not isinstance(scores, list) or len(scores) != len(instances)
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores)):
            raise UpstreamFailure(502, "GPU worker answer has no valid scores")
        # Values pass through unchecked, as in most real APIs: a NaN or a scaled score is
        # "200 OK but wrong", for the steady-state checker to catch.
        return Scores([float(s) for s in scores])


class Scorer:
    def __init__(self, model: DemoModel, features: FeatureClient, worker: WorkerClient, cache: ScoreCache,
                 on_predictions: Callable[[list[Prediction]], None] | None = None) -> None:
        self.model = model
        self.features = features
        self.worker = worker
        self.cache = cache
        self._on_predictions = on_predictions  # metrics: told of every prediction made

    def _prediction(self, txn: Transaction, score: float, degraded: str | None, cached: bool) -> Prediction:
        return Prediction(
            transaction_id=txn.transaction_id, score=score, fraud=bool(score >= self.model.threshold),
            model_version=self.model.version, degraded=degraded is not None, degraded_reason=degraded,
            cached=cached,
        )

    async def predict(self, txns: list[Transaction], request_id: str) -> list[Prediction]:
        """Score transactions; raises ``UpstreamFailure`` when the worker sheds load or answers garbage."""
        keys = [cache_key(self.model.version, t) for t in txns]
        hits = await asyncio.gather(*(self.cache.get(k) for k in keys))
        out: list[Prediction | None] = [
            None if h is None else self._prediction(t, h.score, None, True) for t, h in zip(txns, hits)
        ]
        todo = [i for i, p in enumerate(out) if p is None]
        if todo:
            misses = [txns[i] for i in todo]
            rows = await self.features.fetch(misses, request_id)
            instances = [request_features(t.amount, t.timestamp) + v for t, v in zip(misses, rows.values)]
            scored = await self.worker.score(instances, request_id)
            for i, txn, score, missing in zip(todo, misses, scored.values, rows.degraded):
                degraded = scored.degraded or missing  # the GPU fallback says more than missing features
                out[i] = self._prediction(txn, score, degraded, False)
                if degraded is None and math.isfinite(score):
                    await self.cache.put(keys[i], CachedScore(score, self.model.version))
        made = [p for p in out if p is not None]
        if self._on_predictions is not None:
            self._on_predictions(made)
        return made

    async def score_features(self, instances: list[list[float]], request_id: str) -> Scores:
        """Raw feature rows straight to the worker (KServe ``features`` input)."""
        return await self.worker.score(instances, request_id)

