"""Model API: ``POST /predict`` and KServe v2 ``/v2/models/fraud/infer`` over the pipeline,
plus the demo LLM's ``/v1/chat/completions`` (``llm.py``) and Prometheus' ``/metrics``
(``metrics.py``).

Invalid input is always a 4xx (malformed JSON 400, a bad field 422, a body too large
413) — never a 5xx. Dependency URLs are parameters so a caller can point them at proxy
routes; the API never assumes it talks to its dependencies directly.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from aiohttp import web

from faults.errors import InvalidInput

from . import kserve, llm
from .cache import ScoreCache
from .metrics import ModelApiMetrics
from .model import DemoModel
from .pipeline import FeatureClient, Prediction, Scorer, UpstreamFailure, WorkerClient
from .schema import parse_transaction
from .tracing import install_tracing
from .web import MAX_BODY_BYTES, bad_json, error, invalid, read_json

REQUEST_ID = "X-Request-Id"


@dataclass(frozen=True)
class ModelApiSettings:
    feature_store_url: str
    worker_url: str
    redis_url: str | None = None
    feature_timeout_ms: float = 100.0
    worker_timeout_ms: float = 2000.0
    cache_ttl_s: float = 5.0
    cache_timeout_ms: float = 50.0


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
        [prediction] = await request.app[SCORER].predict([txn])
    except UpstreamFailure as exc:
        return _upstream(exc, request_id)
    return web.json_response(_predict_body(prediction, request_id), headers={REQUEST_ID: request_id})


async def infer(request: web.Request) -> web.Response:
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
            scores = await scorer.score_features([list(r) for r in parsed.features])
            fraud = [s >= scorer.model.threshold for s in scores]
            degraded = False
        else:
            predictions = await scorer.predict(list(parsed.transactions))
            scores = [p.score for p in predictions]
            fraud = [p.fraud for p in predictions]
            degraded = any(p.degraded for p in predictions)
    except UpstreamFailure as exc:
        return _upstream(exc, _request_id(request))
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
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), trace_configs=trace_configs)
        cache = ScoreCache(settings.redis_url, ttl_s=settings.cache_ttl_s,
                           timeout_s=settings.cache_timeout_ms / 1000)
        await cache.ping()  # logs once when the cache is unreachable at start
        features = FeatureClient(session, settings.feature_store_url, model.store_defaults,
                                 settings.feature_timeout_ms / 1000)
        worker = WorkerClient(session, settings.worker_url, settings.worker_timeout_ms / 1000)
        metrics.watch_cache(lambda: (cache.hits, cache.misses))
        app[SCORER] = Scorer(model, features, worker, cache, on_predictions=metrics.predicted)
        yield
        await cache.close()
        await session.close()

    metrics = ModelApiMetrics()
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    metrics.install(app)
    trace_configs = install_tracing(app, "brownout-demo-model-api")
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
