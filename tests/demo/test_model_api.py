from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from brownout.demo.features import request_features
from brownout.demo.model import DemoBundle
from brownout.demo.model_api import ModelApiSettings
from brownout.demo.stack import DemoStack, start_backends, start_model_api
from brownout.demo.web import free_port, serve
from brownout.demo.worker import WorkerSettings

BODY = {"transaction_id": "TX1", "customer_id": "C00001", "terminal_id": "T00001", "amount": 12.5,
        "timestamp": "2025-04-26T12:00:00Z"}


async def _post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Mapping[str, str], Any]:
    async with http.post(url, json=body) as resp:
        return resp.status, resp.headers.copy(), await resp.json(content_type=None)


async def test_predict_returns_the_golden_scores(stack: DemoStack, golden: list[dict[str, Any]],
                                                 http: aiohttp.ClientSession) -> None:
    for g in golden[::10]:
        status, headers, body = await _post(http, stack.url + "/predict", g["body"])
        assert status == 200, body
        assert body["score"] == pytest.approx(g["expected"], abs=1e-12)
        assert body["transaction_id"] == g["body"]["transaction_id"]
        assert body["degraded"] is False and body["fraud"] == (g["expected"] >= 0.5)
        assert body["model_version"] == stack.backends.bundle.model.version
        assert body["request_id"] == headers["X-Request-Id"]


def _stalling_feature_store() -> web.Application:
    async def stall(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/get-online-features", stall)
    return app


async def test_feature_store_timeout_falls_back_to_default_features(bundle: DemoBundle, demo_cache: Any,
                                                                    http: aiohttp.ClientSession) -> None:
    async with start_backends(demo_cache, redis=False) as backends, serve(_stalling_feature_store()) as stalled:
        settings = ModelApiSettings(feature_store_url=stalled.url, worker_url=backends.worker_url,
                                    feature_timeout_ms=100)
        async with start_model_api(bundle, settings) as api:
            started = time.perf_counter()
            status, _, body = await _post(http, api.url + "/predict", BODY)
            elapsed = time.perf_counter() - started
    assert status == 200, body
    assert body["degraded"] is True and body["degraded_reason"] == "feature store timeout"
    assert elapsed < 1.5  # 100 ms budget + scoring; the stall is 5 s
    defaults = request_features(12.5, datetime.fromisoformat("2025-04-26T12:00:00+00:00")) + bundle.model.store_defaults
    assert body["score"] == pytest.approx(float(bundle.model.score(np.array([defaults]))[0]), abs=1e-12)


async def test_unreachable_feature_store_and_unknown_entities_degrade(bundle: DemoBundle, demo_cache: Any,
                                                                      http: aiohttp.ClientSession) -> None:
    async with start_backends(demo_cache, redis=False) as backends:
        down = ModelApiSettings(feature_store_url=f"http://127.0.0.1:{free_port()}", worker_url=backends.worker_url)
        async with start_model_api(bundle, down) as api:
            status, _, body = await _post(http, api.url + "/predict", BODY)
            assert status == 200 and body["degraded"] is True
            assert body["degraded_reason"].startswith("feature store unavailable")
        up = ModelApiSettings(feature_store_url=backends.feature_store_url, worker_url=backends.worker_url)
        async with start_model_api(bundle, up) as api:
            status, _, body = await _post(http, api.url + "/predict", {**BODY, "customer_id": "C99999"})
            assert status == 200 and body["degraded"] is True
            assert body["degraded_reason"].startswith("missing features: customer_stats:count_1d")


async def test_worker_overflow_reaches_the_client_as_503_with_retry_after(bundle: DemoBundle, demo_cache: Any,
                                                                           http: aiohttp.ClientSession) -> None:
    tiny = WorkerSettings(max_batch=1, max_wait_ms=0, queue_size=1, batch_ms=150, row_ms=0, retry_after_s=3)
    async with DemoStack.start(demo_cache, redis=False, worker=tiny) as stack:
        bodies = [{**BODY, "transaction_id": f"TX{i}"} for i in range(8)]
        results = await asyncio.gather(*(_post(http, stack.url + "/predict", b) for b in bodies))
    refused = [r for r in results if r[0] == 503]
    assert refused and any(r[0] == 200 for r in results)
    for _, headers, body in refused:
        assert headers["Retry-After"] == "3" and body["error"] == "GPU worker overloaded"


async def test_worker_down_degrades_to_the_fallback_score_and_never_hangs(bundle: DemoBundle, demo_cache: Any,
                                                                          http: aiohttp.ClientSession) -> None:
    """No replica answers (nothing listens): a fast 200 with the fallback score, flagged degraded."""
    async with start_backends(demo_cache, redis=False) as backends:
        settings = ModelApiSettings(feature_store_url=backends.feature_store_url,
                                    worker_url=f"http://127.0.0.1:{free_port()}")
        async with start_model_api(bundle, settings) as api:
            started = time.perf_counter()
            status, _, body = await _post(http, api.url + "/predict", BODY)
            elapsed = time.perf_counter() - started
    assert status == 200, body
    assert body["degraded"] is True and body["fraud"] is False
    assert body["degraded_reason"] == ("gpu worker unavailable: replica 0 unreachable (ClientConnectorError); "
                                       "replica 0 unreachable (ClientConnectorError)")  # the default: one retry
    assert body["score"] == pytest.approx(float(bundle.model.score(np.array([bundle.model.defaults]))[0]), abs=1e-12)
    assert elapsed < 1.5


@pytest.mark.parametrize("raw", [
    b"{",                                                         # malformed JSON
    b"[1, 2]",                                                    # not an object
    b'{"transaction_id": "TX1"}',                                 # missing fields
    b'{"transaction_id": 1, "customer_id": "C1", "terminal_id": "T1", "amount": 1, "timestamp": "2025-01-01"}',
    b'{"transaction_id": "a", "customer_id": "C1", "terminal_id": "T1", "amount": NaN, "timestamp": "2025-01-01"}',
    b'{"transaction_id": "a", "customer_id": "C1", "terminal_id": "T1", "amount": "12", "timestamp": "2025-01-01"}',
    b'{"transaction_id": "a", "customer_id": "C1", "terminal_id": "T1", "amount": true, "timestamp": "2025-01-01"}',
    b'{"transaction_id": "a", "customer_id": "C1", "terminal_id": "T1", "amount": -5, "timestamp": "2025-01-01"}',
    b'{"transaction_id": "a", "customer_id": "C1", "terminal_id": "T1", "amount": 5, "timestamp": "yesterday"}',
    b'{"transaction_id": "a", "customer_id": "C1", "terminal_id": "T1", "amount": 1e999, "timestamp": "2025-01-01"}',
    b'{"pad": "' + b"x" * 400_000 + b'"}',                        # oversized
    b"\xff\xfe",                                                  # not UTF-8
])
async def test_invalid_bodies_are_4xx(stack: DemoStack, http: aiohttp.ClientSession, raw: bytes) -> None:
    async with http.post(stack.url + "/predict", data=raw, headers={"Content-Type": "application/json"}) as resp:
        assert 400 <= resp.status < 500, await resp.text()


async def test_kserve_v2_infer_matches_predict(stack: DemoStack, golden: list[dict[str, Any]],
                                               http: aiohttp.ClientSession) -> None:
    rows = [g["body"] for g in golden[:3]]
    fields = ("transaction_id", "customer_id", "terminal_id", "amount", "timestamp")
    inputs = [{"name": f, "datatype": "FP64" if f == "amount" else "BYTES", "shape": [3], "data": [r[f] for r in rows]}
              for f in fields]
    status, _, body = await _post(http, stack.url + "/v2/models/fraud/infer", {"id": "req-7", "inputs": inputs})
    assert status == 200, body
    assert body["id"] == "req-7" and body["model_name"] == "fraud" and body["parameters"] == {"degraded": False}
    score = next(o for o in body["outputs"] if o["name"] == "score")
    assert score["shape"] == [3] and score["datatype"] == "FP64"
    assert score["data"] == pytest.approx([g["expected"] for g in golden[:3]], abs=1e-12)

    defaults = list(stack.backends.bundle.model.defaults)
    features = {"inputs": [{"name": "features", "datatype": "FP64", "shape": [2, len(defaults)],
                            "data": [defaults, defaults]}]}
    status, _, body = await _post(http, stack.url + "/v2/models/fraud/versions/1/infer", features)
    assert status == 200 and body["outputs"][0]["shape"] == [2]

    for bad in ({"inputs": []}, {"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]},
                {"inputs": inputs[:2]}):
        status, _, body = await _post(http, stack.url + "/v2/models/fraud/infer", bad)
        assert status == 400 and "error" in body
    status, _, _ = await _post(http, stack.url + "/v2/models/other/infer", {"id": "x", "inputs": inputs})
    assert status == 404
    async with http.get(stack.url + "/v2/models/fraud") as resp:
        meta = await resp.json()
        assert resp.status == 200 and [i["name"] for i in meta["inputs"]] == list(fields)
    for path in ("/v2/health/ready", "/v2/health/live", "/v2/models/fraud/ready", "/healthz"):
        async with http.get(stack.url + path) as resp:
            assert resp.status == 200, path


async def test_cache_hit_with_a_real_redis_server(demo_cache: Any, golden: list[dict[str, Any]],
                                                  http: aiohttp.ClientSession) -> None:
    async with DemoStack.start(demo_cache, redis=True) as stack:
        assert stack.backends.redis_url is not None  # redis-server is part of the test environment
        g = golden[5]
        first = await _post(http, stack.url + "/predict", g["body"])
        second = await _post(http, stack.url + "/predict", g["body"])
        async with http.get(stack.url + "/healthz") as resp:
            health = await resp.json()
    assert first[0] == second[0] == 200
    assert first[2]["cached"] is False and second[2]["cached"] is True
    assert first[2]["score"] == second[2]["score"] == pytest.approx(g["expected"], abs=1e-12)
    assert health["cache"] == "ok" and health["cache_hits"] == 1


async def test_unreachable_redis_runs_uncached(bundle: DemoBundle, demo_cache: Any, http: aiohttp.ClientSession) -> None:
    async with start_backends(demo_cache, redis=False) as backends:
        settings = ModelApiSettings(feature_store_url=backends.feature_store_url, worker_url=backends.worker_url,
                                    redis_url=f"redis://127.0.0.1:{free_port()}/0")
        async with start_model_api(bundle, settings) as api:
            for _ in range(2):
                status, _, body = await _post(http, api.url + "/predict", BODY)
                assert status == 200 and body["cached"] is False and body["degraded"] is False
            async with http.get(api.url + "/healthz") as resp:
                assert (await resp.json())["cache"] == "unavailable"


async def test_a_stalled_redis_costs_at_most_the_cache_timeout(bundle: DemoBundle, demo_cache: Any,
                                                               http: aiohttp.ClientSession) -> None:
    # A "redis" that accepts connections and never answers, as under a tcp latency fault.
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with start_backends(demo_cache, redis=False) as backends:
            settings = ModelApiSettings(feature_store_url=backends.feature_store_url, worker_url=backends.worker_url,
                                        redis_url=f"redis://127.0.0.1:{port}/0", cache_timeout_ms=50)
            async with start_model_api(bundle, settings) as api:
                started = time.perf_counter()
                status, _, body = await _post(http, api.url + "/predict", BODY)
                elapsed = time.perf_counter() - started
    finally:
        server.close()
    assert status == 200 and body["degraded"] is False and body["cached"] is False
    assert elapsed < 1.0  # get and put each give up after 50 ms
