"""PromQL probes against a real Prometheus scraping a real demo model API."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from brownout.demo.stack import DemoStack
from brownout.demo.web import free_port, serve
from brownout.experiment.probes import PromProbe
from brownout.observe.probes import client_for, run_probe
from brownout.observe.promql import PrometheusClient, QueryFailed
from faults.errors import Unauthorized, Unreachable
from tests.observe.prometheus_fixture import PrometheusFactory, PrometheusServer

SCORED = 'demo_model_api_predictions_total{outcome="scored"}'
BODY = {"transaction_id": "TX1", "customer_id": "C00001", "terminal_id": "T00001", "amount": 12.5,
        "timestamp": "2025-04-26T12:00:00Z"}
N = 5


def probe(query: str, bound: dict[str, float], url: str, **more: Any) -> PromProbe:
    return PromProbe.model_validate({"name": "p1", "prometheus": url, "query": query, "bound": bound, **more})


@pytest.fixture
async def scraped(demo_cache: Any, bundle: Any, http: aiohttp.ClientSession,
                  prometheus_factory: PrometheusFactory) -> AsyncIterator[PrometheusServer]:
    """Prometheus scraping a demo model API that made N predictions (and has seen them)."""
    async with DemoStack.start(demo_cache, redis=False) as stack:
        prom = await prometheus_factory({"model-api": stack.url + "/metrics"})
        for i in range(N):
            async with http.post(stack.url + "/predict", json={**BODY, "transaction_id": f"TX{i}"}) as resp:
                assert resp.status == 200
        await prom.wait_for_data(f"{SCORED} == {N}")
        yield prom


async def test_every_series_is_judged_against_the_bound(scraped: PrometheusServer) -> None:
    async with PrometheusClient(scraped.url) as client:
        held = await run_probe(probe(SCORED, {">=": N}, scraped.url), client)
        assert held.outcome == "held" and held.ok
        [series] = held.series
        assert series.value == N and dict(series.labels)["job"] == "model-api"
        assert series.series.startswith('demo_model_api_predictions_total{') and 'outcome="scored"' in series.series

        broken = await run_probe(probe(SCORED, {"<": N}, scraped.url), client)
        assert broken.outcome == "violated" and not broken.ok
        assert broken.bound == f"< {N}"
        assert 'outcome="scored"' in broken.message and f"= {N} breaks < {N}" in broken.message

        # Several series: each judged; the ones that break are named, the rest are not.
        every = await run_probe(probe("demo_model_api_predictions_total", {"<=": 0}, scraped.url), client)
        assert {dict(s.labels)["outcome"]: s.ok for s in every.series} == {"scored": False, "degraded": True,
                                                                          "cached": True}
        assert every.outcome == "violated" and 'outcome="scored"' in every.message
        assert 'outcome="cached"' not in every.message

        # Two terms: both must hold.
        ranged = await run_probe(probe(SCORED, {">": 0, "<=": N - 1}, scraped.url), client)
        assert ranged.outcome == "violated" and ranged.bound == f"> 0 and <= {N - 1}"

        scalar = await run_probe(probe(f"scalar(sum({SCORED}))", {"==": N}, scraped.url), client)
        assert scalar.outcome == "held" and [s.series for s in scalar.series] == ["{}"]

        nan = await run_probe(probe(f"{SCORED} / 0 * 0", {"<=": 1}, scraped.url), client)  # 0/0: NaN breaks any bound
        assert nan.outcome == "violated" and "= NaN breaks" in nan.message


async def test_empty_results_fail_or_skip(scraped: PrometheusServer) -> None:
    async with PrometheusClient(scraped.url) as client:
        none = await run_probe(probe('demo_model_api_predictions_total{outcome="nope"}', {"<=": 1}, scraped.url), client)
        assert none.outcome == "no_data" and not none.ok and none.message.startswith("no data")
        skipped = await run_probe(probe('demo_model_api_predictions_total{outcome="nope"}', {"<=": 1}, scraped.url,
                                        on_empty="skip"), client)
        assert skipped.outcome == "skipped" and skipped.ok and skipped.series == ()
        # The time= of the query is honoured: an hour ago there was no data.
        past = await run_probe(probe(SCORED, {">=": 0}, scraped.url), client, at=time.time() - 3600)
        assert past.outcome == "no_data" and past.at < time.time() - 3000


async def test_query_errors_name_the_probe_and_quote_prometheus(scraped: PrometheusServer) -> None:
    async with PrometheusClient(scraped.url) as client:
        with pytest.raises(QueryFailed) as bad:
            await run_probe(probe("sum(demo_model_api_predictions_total", {"<=": 1}, scraped.url), client)
        text = str(bad.value)
        assert "probe 'p1'" in text and "bad_data" in text and "parse error" in text
        assert "sum(demo_model_api_predictions_total" in text
        with pytest.raises(QueryFailed, match="range vector"):
            await run_probe(probe(f"{SCORED}[1m]", {"<=": 1}, scraped.url), client)
    with pytest.raises(QueryFailed, match="without Prometheus' JSON"):  # a URL that is no Prometheus API
        async with PrometheusClient(scraped.url + "/graph") as client:
            await client.query("up")


async def test_a_dead_prometheus_is_unreachable(prometheus_factory: PrometheusFactory) -> None:
    prom = await prometheus_factory({"none": f"http://127.0.0.1:{free_port()}/metrics"}, wait_up=False)
    async with PrometheusClient(prom.url) as client:
        assert (await client.query("vector(1)")).samples[0].value == 1
        await prom.stop()
        with pytest.raises(Unreachable, match=r"probe 'p1': Prometheus at http://127\.0\.0\.1:\d+ is unreachable"):
            await run_probe(probe("vector(1)", {"<=": 1}, prom.url), client)


async def test_a_silent_prometheus_times_out_as_unreachable() -> None:
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response()

    app = web.Application()
    app.router.add_post("/api/v1/query", hang)
    async with serve(app) as silent:
        p = probe("vector(1)", {"<=": 1}, silent.url, timeout="300ms")
        started = time.monotonic()
        async with client_for(p) as client:
            with pytest.raises(Unreachable, match="timed out"):
                await run_probe(p, client)
        assert time.monotonic() - started < 5


def _auth_gateway(upstream: str, expected: str) -> web.Application:
    """What teams put in front of Prometheus: an auth-checking reverse proxy."""
    async def forward(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="unauthorized")
        async with aiohttp.ClientSession() as session:
            async with session.post(upstream + request.path, data=await request.post()) as resp:
                return web.Response(status=resp.status, body=await resp.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/query", forward)
    return app


@pytest.mark.parametrize("auth, header", [
    ({"bearer_token": "s3cret"}, "Bearer s3cret"),
    ({"basic": {"username": "ops", "password": "pa:ss"}}, "Basic " + base64.b64encode(b"ops:pa:ss").decode()),
])
async def test_bearer_and_basic_auth(prometheus_factory: PrometheusFactory, auth: dict[str, Any], header: str) -> None:
    prom = await prometheus_factory({"none": f"http://127.0.0.1:{free_port()}/metrics"}, wait_up=False)
    async with serve(_auth_gateway(prom.url, header)) as gateway:
        good = probe("vector(3)", {"==": 3}, gateway.url, auth=auth)
        async with client_for(good) as client:
            assert (await run_probe(good, client)).outcome == "held"
        anonymous = probe("vector(3)", {"==": 3}, gateway.url)
        async with client_for(anonymous) as client:
            with pytest.raises(Unauthorized, match="probe 'p1'.*refused the credentials"):
                await run_probe(anonymous, client)
    assert "s3cret" not in repr(good) and "pa:ss" not in repr(good)


@pytest.mark.parametrize("changes, message", [
    ({"bound": {}}, "must map an operator"),
    ({"bound": {"=<": 1}}, "unknown operator '=<'"),
    ({"bound": {"<=": "high"}}, "must be a finite number"),
    ({"bound": {"<=": float("nan")}}, "must be a finite number"),
    ({"prometheus": "localhost:9090"}, "must be an http:// or https:// URL"),
    ({"query": "  "}, "must be a PromQL expression"),
    ({"phases": ["baseline", "later"]}, "phases"),
    ({"phases": []}, "at least one"),
    ({"on_empty": "ignore"}, "on_empty"),
    ({"auth": {"bearer_token": "a", "basic": {"username": "u", "password": "p"}}}, "exactly one"),
    ({"name": "has space"}, "name"),
    ({"timeout": "0s"}, "longer than 0"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_probes_are_refused_with_the_field(changes: dict[str, Any], message: str) -> None:
    good = {"name": "p1", "prometheus": "http://127.0.0.1:9090", "query": "up", "bound": {"<=": 1}}
    PromProbe.model_validate(good)
    with pytest.raises(ValidationError, match=message):
        PromProbe.model_validate({**good, **changes})


def test_defaults() -> None:
    p = PromProbe.model_validate({"name": "p1", "prometheus": "http://h:9090/", "query": "up", "bound": {"<=": 1}})
    assert p.phases == ("baseline", "method", "recovery") and p.on_empty == "fail" and p.timeout == 5.0
    assert p.prometheus == "http://h:9090" and p.applies_to("method") and p.auth is None
    assert not probe("up", {"<": 1}, "http://h", phases=["method"]).applies_to("recovery")


