"""The model API's scoring path: cache → feature store → GPU worker, with real degradation.

- A feature-store timeout, error or unreadable answer falls back to default features (the
  training means) and marks the prediction ``degraded``; so does a missing or non-numeric
  feature value. Degraded scores are never cached.
- The worker's 503 becomes the client's 503 with its ``Retry-After`` passed on; a worker
  that cannot be reached is 503, a slow one 504, a malformed answer 502.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .cache import CachedScore, ScoreCache
from .features import STORE_FEATURES, request_features
from .model import DemoModel
from .schema import Transaction


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
    def __init__(self, session: aiohttp.ClientSession, url: str, defaults: list[float], timeout_s: float) -> None:
        if len(defaults) != len(STORE_FEATURES):
            raise ValueError(f"need {len(STORE_FEATURES)} defaults, one per feature-store feature")
        self._session = session
        self._url = url.rstrip("/") + "/get-online-features"
        self._defaults = defaults
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _fallback(self, n: int, reason: str) -> FeatureRows:
        return FeatureRows(values=[list(self._defaults) for _ in range(n)], degraded=[reason] * n)

    async def fetch(self, txns: list[Transaction]) -> FeatureRows:
        request = {"features": list(STORE_FEATURES),
                   "entities": {"customer_id": [t.customer_id for t in txns],
                                "terminal_id": [t.terminal_id for t in txns]}}
        try:
            async with self._session.post(self._url, json=request, timeout=self._timeout) as resp:
                if resp.status != 200:
                    return self._fallback(len(txns), f"feature store answered {resp.status}")
                raw = await resp.read()
        except (asyncio.TimeoutError, TimeoutError):
            return self._fallback(len(txns), "feature store timeout")
        except aiohttp.ClientError as exc:
            return self._fallback(len(txns), f"feature store unavailable: {type(exc).__name__}")
        try:
            return self._assemble(_columns(json.loads(raw), len(txns)), len(txns))
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


class WorkerClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, timeout_s: float) -> None:
        self._session = session
        self._url = url.rstrip("/") + "/v1/score"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def score(self, instances: list[list[float]]) -> list[float]:
        try:
            async with self._session.post(self._url, json={"instances": instances}, timeout=self._timeout) as resp:
                if resp.status == 503:
                    raise UpstreamFailure(503, "GPU worker overloaded", resp.headers.get("Retry-After", "1"))
                if resp.status != 200:
                    raise UpstreamFailure(502, f"GPU worker answered {resp.status}")
                body = await resp.json(content_type=None)
        except (asyncio.TimeoutError, TimeoutError):
            raise UpstreamFailure(504, "GPU worker timeout") from None
        except aiohttp.ClientConnectionError:
            raise UpstreamFailure(503, "GPU worker unavailable", "1") from None
        except (aiohttp.ClientError, ValueError):
            raise UpstreamFailure(502, "GPU worker answer unreadable") from None
        scores = body.get("scores") if isinstance(body, dict) else None
        if (not isinstance(scores, list) or len(scores) != len(instances)
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores)):
            raise UpstreamFailure(502, "GPU worker answer has no valid scores")
        # Values pass through unchecked, as in most real APIs: a NaN or a scaled score is
        # "200 OK but wrong", for the steady-state checker to catch.
        return [float(s) for s in scores]


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

    async def predict(self, txns: list[Transaction]) -> list[Prediction]:
        """Score transactions; raises ``UpstreamFailure`` when the worker fails."""
        keys = [cache_key(self.model.version, t) for t in txns]
        hits = await asyncio.gather(*(self.cache.get(k) for k in keys))
        out: list[Prediction | None] = [
            None if h is None else self._prediction(t, h.score, None, True) for t, h in zip(txns, hits)
        ]
        todo = [i for i, p in enumerate(out) if p is None]
        if todo:
            misses = [txns[i] for i in todo]
            rows = await self.features.fetch(misses)
            instances = [request_features(t.amount, t.timestamp) + v for t, v in zip(misses, rows.values)]
            scores = await self.worker.score(instances)
            for i, txn, score, degraded in zip(todo, misses, scores, rows.degraded):
                out[i] = self._prediction(txn, score, degraded, False)
                if degraded is None and math.isfinite(score):
                    await self.cache.put(keys[i], CachedScore(score, self.model.version))
        made = [p for p in out if p is not None]
        if self._on_predictions is not None:
            self._on_predictions(made)
        return made

    async def score_features(self, instances: list[list[float]]) -> list[float]:
        """Raw feature rows straight to the worker (KServe ``features`` input)."""
        return await self.worker.score(instances)

