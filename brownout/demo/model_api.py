"""Model API: ``POST /predict`` and KServe v2 ``/v2/models/fraud/infer`` over the pipeline,
plus the demo LLM's ``/v1/chat/completions`` (``llm.py``) and Prometheus' ``/metrics``
(``metrics.py``).

Invalid input is always a 4xx (malformed JSON 400, a bad field 422, a body too large
413) — never a 5xx. Dependency URLs are parameters so a caller can point them at proxy
routes; the API never assumes it talks to its dependencies directly. The GPU worker may be
several replicas (``worker_url`` as a list or ``URL1,URL2``); both dependencies are called
under one ``RetryPolicy`` (``retry.py``) with the client's ``X-Request-Id`` on every attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from aiohttp import web

from faults.errors import InvalidInput

from . import kserve, llm
from .cache import ScoreCache
from .metrics import ModelApiMetrics
from .model import DemoModel
from .pipeline import FeatureClient, Prediction, Scorer, UpstreamFailure, WorkerClient, average_score
from .retry import DEFAULT_RETRY, RetryPolicy
from .schema import parse_transaction
from .upstream import REQUEST_ID, Upstream
from .web import MAX_BODY_BYTES, bad_json, error, invalid, read_json


def split_urls(given: str | Sequence[str]) -> tuple[str, ...]:
    """``URL`` or ``URL1,URL2`` or a list of them → the URLs, in order."""
    parts = (given,) if isinstance(given, str) else tuple(given)
    return tuple(u.strip() for part in parts for u in part.split(",") if u.strip())


@dataclass(frozen=True)
class ModelApiSettings:
    feature_store_url: str
    worker_url: str | tuple[str, ...]  # one GPU worker, or its replicas (a tuple, or "URL1,URL2")
    redis_url: str | None = None
    feature_timeout_ms: float = 100.0   # one attempt, and the end of any retry (with retry.budget_ms)
    worker_timeout_ms: float = 2000.0
    cache_ttl_s: float = 5.0
    cache_timeout_ms: float = 50.0
    retry: RetryPolicy = DEFAULT_RETRY

    def __post_init__(self) -> None:
        if not self.worker_urls:
            raise InvalidInput("give at least one GPU worker URL", "worker_url")

    @property
    def worker_urls(self) -> tuple[str, ...]:
        return split_urls(self.worker_url)


SCORER = web.AppKey("scorer", Scorer)


def _request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID, "")
    return given if 0 < len(given) <= 128 and given.isprintable() else uuid.uuid4().hex


def _upstream(exc: UpstreamFailure, request_id: str) -> web.Response:
    headers = {REQUEST_ID: request_id}
    if exc.retry_after is not None:
        headers["Retry-After"] = exc.retry_after
    return error(exc.status, exc.message, headers=headers, request_id=request_id)


def _predict_body(p: Prediction, request_id: str) -> dict[str, Any]:
    body = asdict(p)
    if body["degraded_reason"] is None:
        del body["degraded_reason"]
    body["request_id"] = request_id
    return body


async def predict(request: web.Request) -> web.Response:
    request_id = _request_id(request)
    try:
        raw = await read_json(request)
    except InvalidInput as exc:
        return bad_json(exc)
    try:
        txn = parse_transaction(raw)
    except InvalidInput as exc:
        return invalid(exc)
    try:
        [prediction] = await request.app[SCORER].predict([txn], request_id)
    except UpstreamFailure as exc:
        return _upstream(exc, request_id)
    return web.json_response(_predict_body(prediction, request_id), headers={REQUEST_ID: request_id})


async def infer(request: web.Request) -> web.Response:
    request_id = _request_id(request)
    name = request.match_info["model"]
    if name != kserve.MODEL_NAME:
        return error(404, f"model {name!r} not found; this server serves {kserve.MODEL_NAME!r}")
    scorer = request.app[SCORER]
    try:
        parsed = kserve.parse_infer(await read_json(request))
    except InvalidInput as exc:  # KServe answers bad requests with 400 {"error": ...}
        return error(400, str(exc))
    try:
        if parsed.features:
            scored = await scorer.score_features([list(r) for r in parsed.features], request_id)
            scores = scored.values
            fraud = [s >= scorer.model.threshold for s in scores]
            degraded = scored.degraded is not None
        else:
            predictions = await scorer.predict(list(parsed.transactions), request_id)
            scores = [p.score for p in predictions]
            fraud = [p.fraud for p in predictions]
            degraded = any(p.degraded for p in predictions)
    except UpstreamFailure as exc:
        return _upstream(exc, request_id)
    return web.json_response(kserve.infer_response(parsed, scorer.model.version, scores, fraud, degraded))


async def model_metadata(request: web.Request) -> web.Response:
    if request.match_info["model"] != kserve.MODEL_NAME:
        return error(404, "model not found")
    return web.json_response(kserve.metadata(request.app[SCORER].model.version))


async def ready(request: web.Request) -> web.Response:
    if request.match_info.get("model", kserve.MODEL_NAME) != kserve.MODEL_NAME:
        return web.Response(status=404)
    return web.Response(status=200)


async def healthz(request: web.Request) -> web.Response:
    scorer = request.app[SCORER]
    cache = "disabled" if not scorer.cache.enabled else ("ok" if scorer.cache.healthy else "unavailable")
    return web.json_response({"status": "ok", "model_version": scorer.model.version, "cache": cache,
                              "cache_hits": scorer.cache.hits, "cache_misses": scorer.cache.misses})


async def server_metadata(request: web.Request) -> web.Response:
    return web.json_response({"name": "brownout-demo-model-api", "version": request.app[SCORER].model.version,
                              "extensions": []})


def create_app(model: DemoModel, settings: ModelApiSettings) -> web.Application:
    async def dependencies(app: web.Application) -> Any:
        # One pooled session for both dependencies (aiohttp's recommended pattern).
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        cache = ScoreCache(settings.redis_url, ttl_s=settings.cache_ttl_s,
                           timeout_s=settings.cache_timeout_ms / 1000)
        await cache.ping()  # logs once when the cache is unreachable at start
        features = FeatureClient(Upstream("feature-store", session, [settings.feature_store_url],
                                          "/get-online-features", settings.feature_timeout_ms / 1000,
                                          settings.retry, on_attempt=metrics.attempted), model.store_defaults)
        worker = WorkerClient(Upstream("gpu-worker", session, settings.worker_urls, "/v1/score",
                                       settings.worker_timeout_ms / 1000, settings.retry,
                                       on_attempt=metrics.attempted), average_score(model))
        metrics.watch_cache(lambda: (cache.hits, cache.misses))
        app[SCORER] = Scorer(model, features, worker, cache, on_predictions=metrics.predicted)
        yield
        await cache.close()
        await session.close()

    metrics = ModelApiMetrics()
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    metrics.install(app)
    app.cleanup_ctx.append(dependencies)
    r = app.router
    r.add_post("/predict", predict)
    r.add_post("/v2/models/{model}/infer", infer)
    r.add_post("/v2/models/{model}/versions/{version}/infer", infer)
    r.add_get("/v2/models/{model}", model_metadata)
    r.add_get("/v2/models/{model}/ready", ready)
    r.add_get("/v2/health/ready", ready)
    r.add_get("/v2/health/live", ready)
    r.add_get("/v2", server_metadata)
    r.add_get("/healthz", healthz)
    llm.add_routes(app)  # the OpenAI-compatible streaming endpoint: a target for stream faults
    return app
