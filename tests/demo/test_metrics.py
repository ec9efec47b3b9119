"""Each demo service's own ``/metrics``: the series move as the requests and faults say."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from brownout.demo.model import DemoBundle
from brownout.demo.model_api import ModelApiSettings
from brownout.demo.pipeline import FALLBACK_REASONS
from brownout.demo.stack import DemoStack, start_backends, start_model_api
from brownout.demo.web import free_port, serve
from brownout.demo.worker import WorkerSettings
from brownout.demo.worker import create_app as worker_app

BODY = {"transaction_id": "TX1", "customer_id": "C00001", "terminal_id": "T00001", "amount": 12.5,
        "timestamp": "2025-04-26T12:00:00Z"}


async def scrape(http: aiohttp.ClientSession, base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with http.get(base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


async def _predict(http: aiohttp.ClientSession, url: str, body: Any = BODY) -> dict[str, Any]:
    async with http.post(url + "/predict", json=body) as resp:
        assert resp.status == 200
        return await resp.json()  # type: ignore[no-any-return]


async def test_requests_predictions_and_batches_are_counted(stack: DemoStack, http: aiohttp.ClientSession) -> None:
    before = await scrape(http, stack.url)
    n = 7
    for i in range(n):
        assert (await _predict(http, stack.url, {**BODY, "transaction_id": f"TX{i}"}))["degraded"] is False
    api = await scrape(http, stack.url)
    assert value(api, "demo_model_api_predictions_total", outcome="scored") == n
    assert value(api, "demo_model_api_predictions_total", outcome="degraded") == 0
    assert value(api, "demo_model_api_requests_total", endpoint="/predict", status="200") == n
    assert value(api, "demo_model_api_request_duration_seconds_count", endpoint="/predict") == n
    assert value(api, "demo_model_api_request_duration_seconds_sum", endpoint="/predict") > 0
    assert value(before, "demo_model_api_requests_total", endpoint="/predict", status="200") == 0
    assert value(api, "process_cpu_seconds_total") > 0   # the process collector: cost per prediction
    assert not any(name.endswith("_total") and dict(labels).get("endpoint") == "/metrics" for name, labels in api)
    for reason in FALLBACK_REASONS:  # present from the start, so rate() works from the first failure
        assert ("demo_model_api_fallbacks_total", frozenset({("reason", reason)})) in api

    store = await scrape(http, stack.backends.feature_store_url)
    assert value(store, "demo_feature_store_requests_total", endpoint="/get-online-features", status="200") == n
    assert value(store, "demo_feature_store_request_duration_seconds_count", endpoint="/get-online-features") == n

    worker = await scrape(http, stack.backends.worker_url)
    assert value(worker, "demo_gpu_worker_requests_total", endpoint="/v1/score", status="200") == n
    batches = value(worker, "demo_gpu_worker_batches_total")
    assert 1 <= batches <= n
    assert value(worker, "demo_gpu_worker_batch_size_count") == batches
    assert value(worker, "demo_gpu_worker_batch_size_sum") == n  # one row per prediction
    assert value(worker, "demo_gpu_worker_batch_size_bucket", le="+Inf") == batches
    assert value(worker, "demo_gpu_worker_queue_depth") == 0
    assert value(worker, "demo_gpu_worker_rejected_total") == 0


async def test_bad_input_and_unknown_paths_keep_labels_few(stack: DemoStack, http: aiohttp.ClientSession) -> None:
    async with http.post(stack.url + "/predict", data=b"{not json") as resp:
        assert resp.status == 400
    for i in range(3):
        async with http.get(f"{stack.url}/no/such/path/{i}") as resp:
            assert resp.status == 404
    api = await scrape(http, stack.url)
    assert value(api, "demo_model_api_requests_total", endpoint="/predict", status="400") == 1
    assert value(api, "demo_model_api_requests_total", endpoint="unmatched", status="404") == 3
    assert not any("/no/such" in v for _, labels in api for _, v in labels)


def _stalling_feature_store() -> web.Application:
    async def stall(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=200, body=b'{"metadata": {"feature_names"')  # cut short

    app = web.Application()
    app.router.add_post("/get-online-features", stall)
    app.router.add_post("/broken/get-online-features", broken)
    return app


async def test_fallbacks_are_counted_by_reason(bundle: DemoBundle, demo_cache: Any,
                                              http: aiohttp.ClientSession) -> None:
    async with start_backends(demo_cache, redis=False) as backends, serve(_stalling_feature_store()) as bad:
        cases = [
            (bad.url, BODY, "timeout"),
            (bad.url + "/broken", BODY, "unreadable"),
            (f"http://127.0.0.1:{free_port()}", BODY, "unavailable"),
            (backends.feature_store_url, {**BODY, "customer_id": "C99999"}, "missing_features"),
        ]
        for url, body, reason in cases:
            settings = ModelApiSettings(feature_store_url=url, worker_url=backends.worker_url, feature_timeout_ms=100)
            async with start_model_api(bundle, settings) as api:
                for _ in range(2):
                    assert (await _predict(http, api.url, body))["degraded"] is True
                metrics = await scrape(http, api.url)
            assert value(metrics, "demo_model_api_fallbacks_total", reason=reason) == 2, reason
            assert sum(value(metrics, "demo_model_api_fallbacks_total", reason=r) for r in FALLBACK_REASONS) == 2
            assert value(metrics, "demo_model_api_predictions_total", outcome="degraded") == 2
            assert value(metrics, "demo_model_api_predictions_total", outcome="scored") == 0


async def test_cached_predictions_are_counted_apart(bundle: DemoBundle, demo_cache: Any,
                                                   http: aiohttp.ClientSession) -> None:
    async with DemoStack.start(demo_cache, redis=True) as s:
        if s.backends.redis_url is None:
            raise AssertionError("redis-server is needed (.ci/run installs it)")
        for _ in range(3):
            await _predict(http, s.url)
        api = await scrape(http, s.url)
    assert value(api, "demo_model_api_predictions_total", outcome="scored") == 1
    assert value(api, "demo_model_api_predictions_total", outcome="cached") == 2
    assert value(api, "demo_model_api_cache_lookups_total", result="hit") == 2
    assert value(api, "demo_model_api_cache_lookups_total", result="miss") == 1


async def test_worker_queue_depth_and_rejections(bundle: DemoBundle, http: aiohttp.ClientSession) -> None:
    """One slow batch at a time and room for two: the gauge shows who waits, 503s are counted."""
    settings = WorkerSettings(max_batch=1, queue_size=2, batch_ms=3000, max_wait_ms=0)
    row = [[0.5] * 15]

    async def score() -> int:
        async with http.post(w.url + "/v1/score", json={"instances": row}) as resp:
            await resp.read()
            return resp.status

    async with serve(worker_app(bundle.model, settings)) as w:
        sent = [asyncio.create_task(score())]
        await asyncio.sleep(0.5)  # the first is taken into a (3 s) batch
        sent += [asyncio.create_task(score()) for _ in range(4)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while loop.time() < deadline and [t.result() for t in sent if t.done()].count(503) < 2:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # any later refusal is back too; the batch still runs
        metrics = await scrape(http, w.url)
        rejected = [t.result() for t in sent if t.done()].count(503)
        assert rejected >= 2
        assert value(metrics, "demo_gpu_worker_rejected_total") == rejected
        assert value(metrics, "demo_gpu_worker_requests_total", endpoint="/v1/score", status="503") == rejected
        # One request in the running batch; the accepted others wait (2 unless the first was slow).
        assert value(metrics, "demo_gpu_worker_queue_depth") == len(sent) - 1 - rejected
        for t in sent:
            t.cancel()
        await asyncio.gather(*sent, return_exceptions=True)


def test_fallback_reason_codes_cover_every_message() -> None:
    from brownout.demo.pipeline import fallback_reason
    assert fallback_reason("feature store timeout") == "timeout"
    assert fallback_reason("feature store answered 503") == "error_status"
    assert fallback_reason("feature store unavailable: ClientConnectorError") == "unavailable"
    assert fallback_reason("feature store answer unreadable") == "unreadable"
    assert fallback_reason("missing features: customer_stats:count_1d") == "missing_features"
    assert fallback_reason("something new") == "other"
    assert json.dumps(FALLBACK_REASONS)  # a fixed, small set
