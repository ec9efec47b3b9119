from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web

from brownout.demo.feature_store import create_app
from brownout.demo.features import STORE_FEATURES
from brownout.demo.model import DemoBundle
from brownout.demo.model_api import ModelApiSettings
from brownout.demo.stack import start_backends, start_model_api
from brownout.demo.web import serve

BODY = {"transaction_id": "TX1", "customer_id": "C00001", "terminal_id": "T00001", "amount": 12.5,
        "timestamp": "2025-04-26T12:00:00Z"}


async def test_feast_shaped_column_oriented_answer(bundle: DemoBundle, http: aiohttp.ClientSession) -> None:
    request = {"features": ["customer_stats:count_7d", "terminal_stats:risk_30d"],
               "entities": {"customer_id": ["C00001", "C99999"], "terminal_id": ["T00002", "T00003"]}}
    async with serve(create_app(bundle.snapshot)) as store:
        async with http.post(store.url + "/get-online-features", json=request) as resp:
            assert resp.status == 200
            body = await resp.json()
    names = body["metadata"]["feature_names"]
    assert names == ["customer_id", "terminal_id", "customer_stats:count_7d", "terminal_stats:risk_30d"]
    assert len(body["results"]) == len(names)
    assert body["results"][0]["values"] == ["C00001", "C99999"]
    count_7d = body["results"][2]
    assert count_7d["values"][0] == float(bundle.snapshot.customers[1][2])
    assert count_7d["values"][1] is None and count_7d["statuses"] == ["PRESENT", "NOT_FOUND"]
    assert count_7d["event_timestamps"][0] == bundle.snapshot.event_timestamp
    assert body["results"][3]["statuses"] == ["PRESENT", "PRESENT"]


@pytest.mark.parametrize("request_body", [
    {"features": ["nope:x"], "entities": {"customer_id": ["C1"]}},
    {"features": [], "entities": {"customer_id": ["C1"]}},
    {"features": ["customer_stats:count_1d"], "entities": {"customer_id": ["C1"], "terminal_id": []}},
    {"features": ["terminal_stats:risk_1d"], "entities": {"customer_id": ["C1"]}},
    {"features": ["customer_stats:count_1d"], "entities": {"driver_id": [1]}},
    [1, 2],
])
async def test_bad_requests_are_422(bundle: DemoBundle, http: aiohttp.ClientSession, request_body: Any) -> None:
    async with serve(create_app(bundle.snapshot)) as store:
        async with http.post(store.url + "/get-online-features", json=request_body) as resp:
            assert resp.status == 422
            assert "error" in await resp.json()


def _store_answering(payload: bytes) -> web.Application:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_post("/get-online-features", answer)
    return app


@pytest.mark.parametrize("payload", [
    b'{"metadata": {"feature_names": ["customer_id"]}, "resu',            # truncated
    b'{"metadata": {}, "results": []}',                                    # schema drift
    b"[]",
    b'{"metadata": {"feature_names": ["a", "b"]}, "results": [{"values": [1], "statuses": []}, {"values": [2]}]}',
])
async def test_an_unreadable_feature_answer_degrades_instead_of_failing(
        bundle: DemoBundle, demo_cache: Any, http: aiohttp.ClientSession, payload: bytes) -> None:
    async with start_backends(demo_cache, redis=False) as backends, serve(_store_answering(payload)) as store:
        settings = ModelApiSettings(feature_store_url=store.url, worker_url=backends.worker_url)
        async with start_model_api(bundle, settings) as api:
            async with http.post(api.url + "/predict", json=BODY) as resp:
                body = await resp.json()
    assert resp.status == 200 and body["degraded"] is True
    assert body["degraded_reason"] in ("feature store answer unreadable",
                                       "missing features: " + ", ".join(STORE_FEATURES))
