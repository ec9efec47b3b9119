"""rate_limit through the real proxy with a real client: exact counts, OpenAI's headers and body, tokens
settled against usage, keys, match composition, PATCH keeping the budget, leases, the arrivals counter."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess
from tests.proxy.capacity_helpers import Capacity, add_fault, arrivals, scrape, value


async def call(http: aiohttp.ClientSession, proxy: ProxyProcess, path: str = "/v1/chat/completions",
               body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with http.post(proxy.url("gpu", path), json=body or {"model": "m"}, headers=headers) as response:
        raw = await response.read()
        return response.status, response.headers, json.loads(raw) if raw else None


async def test_exactly_the_burst_is_granted_then_429s_with_openai_headers(capacity: Capacity,
                                                                         http: aiohttp.ClientSession) -> None:
    """One request per 10 s after a burst of 10: 30 requests sent within seconds get exactly 10 answers."""
    proxy, upstream = capacity
    await add_fault(http, proxy, "rate_limit", {"requests_per_minute": 6, "burst": 10})
    before, upstream_before = await scrape(http, proxy), upstream.arrivals
    started = time.monotonic()
    results = [await call(http, proxy, body={"n": i}) for i in range(30)]
    assert time.monotonic() - started < 9.0  # else a refill could have slipped in
    statuses = [status for status, _, _ in results]
    assert statuses == [200] * 10 + [429] * 20
    assert upstream.arrivals - upstream_before == 10
    _, headers, body = results[-1]
    assert 1 <= int(headers["Retry-After"]) <= 10
    assert headers["x-ratelimit-limit-requests"] == "6" and headers["x-ratelimit-remaining-requests"] == "0"
    assert re.fullmatch(r"\d+(\.\d+)?s|1m\d+s", headers["x-ratelimit-reset-requests"]), headers["x-ratelimit-reset-requests"]
    assert body["error"]["type"] == "requests" and body["error"]["code"] == "rate_limit_exceeded"
    assert "x-ratelimit-remaining-requests" in results[0][1]  # admitted answers carry them too
    after = await scrape(http, proxy)
    # The arrivals counter counts every request, the 429s the fault answered included.
    assert arrivals(after, "gpu") - arrivals(before, "gpu") == 30
    assert value(after, "brownout_requests_total", route="gpu", status="429") - value(
        before, "brownout_requests_total", route="gpu", status="429") == 20
    assert value(after, "brownout_fault_rejections_total", route="gpu", kind="rate_limit", reason="requests") - value(
        before, "brownout_fault_rejections_total", route="gpu", kind="rate_limit", reason="requests") == 20


async def test_granted_rate_at_a_real_rate(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    """20 requests/s after a burst of 10, offered as fast as one client can send for ~2.5 s."""
    proxy, _ = capacity
    await add_fault(http, proxy, "rate_limit", {"requests_per_minute": 1200, "burst": 10},
                    match={"path": "/rate/*"})
    granted = sent = 0
    first = last = time.monotonic()
    while time.monotonic() - first < 2.5:
        last = time.monotonic()
        status, _, _ = await call(http, proxy, path=f"/rate/{sent}")
        granted += status == 200
        sent += 1
    expected = 10 + 20 * (last - first)
    assert sent > 3 * expected  # the client offered far more than the limit
    assert abs(granted - expected) <= 2, (granted, expected, sent)


async def test_tokens_are_settled_against_the_answers_usage(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    """100 tokens at most, 10/s: a request reserving 100 that used 20 leaves room for 70 more at once."""
    proxy, _ = capacity
    await add_fault(http, proxy, "rate_limit", {"tokens_per_minute": 600, "burst_tokens": 100})
    status, headers, _ = await call(http, proxy, "/v1/chat/completions?total_tokens=20", {"max_tokens": 100})
    assert status == 200 and headers["x-ratelimit-limit-tokens"] == "600"
    status, _, _ = await call(http, proxy, "/v1/chat/completions?total_tokens=20", {"max_tokens": 70})
    assert status == 200  # without settlement the bucket would be empty
    status, headers, body = await call(http, proxy, "/v1/chat/completions?total_tokens=20", {"max_tokens": 100})
    assert status == 429 and body["error"]["type"] == "tokens" and int(headers["Retry-After"]) >= 1


async def test_tokens_are_settled_against_a_streams_final_usage(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    await add_fault(http, proxy, "rate_limit", {"tokens_per_minute": 600, "burst_tokens": 100})
    body = {"max_tokens": 100, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(proxy.url("gpu", "/v1/chat/completions?total_tokens=15&events=20"), json=body) as response:
        assert response.status == 200
        raw = await response.read()
    assert raw.count(b"data: ") == 22 and b'"total_tokens": 15' in raw  # passed through untouched
    status, _, _ = await call(http, proxy, "/v1/chat/completions", {"max_tokens": 80})
    assert status == 200  # 85 back from the stream's usage


async def test_per_header_budgets_compose_with_a_path_match(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    await add_fault(http, proxy, "rate_limit", {"requests_per_minute": 6, "burst": 2, "key": "header:Authorization"},
                    match={"path": "/v1/*", "methods": ["POST"]})
    alice, bob = {"Authorization": "Bearer sk-alice"}, {"Authorization": "Bearer sk-bob"}
    assert [(await call(http, proxy, headers=alice, body={"a": i}))[0] for i in range(3)] == [200, 200, 429]
    assert [(await call(http, proxy, headers=bob, body={"b": i}))[0] for i in range(2)] == [200, 200]
    assert [(await call(http, proxy, path="/health", headers=alice, body={"h": i}))[0] for i in range(5)] == [200] * 5


@pytest.mark.parametrize("match", [{"probability": 0.5}, {"first_n": 10}, {"every_nth": 2}, {"max_injections": 3}])
async def test_count_and_probability_matches_are_refused_by_name(capacity: Capacity, http: aiohttp.ClientSession,
                                                                 match: dict[str, Any]) -> None:
    proxy, _ = capacity
    for kind, params in (("rate_limit", {"requests_per_minute": 60}), ("concurrency_limit", {"max_concurrent": 2})):
        async with http.post(proxy.admin + "/faults", json={"type": kind, "route": "gpu", "params": params,
                                                             "match": match}) as response:
            body = await response.json()
            assert response.status == 400 and body["field"] == f"match.{next(iter(match))}", body


async def test_a_patch_keeps_the_budget(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    fault = await add_fault(http, proxy, "rate_limit", {"requests_per_minute": 6, "burst": 3})
    assert [(await call(http, proxy, body={"p": i}))[0] for i in range(4)] == [200, 200, 200, 429]
    async with http.patch(proxy.admin + f"/faults/{fault['id']}", json={"params": {"burst": 5}}) as response:
        assert response.status == 200
    assert (await call(http, proxy, body={"p": 9}))[0] == 429  # still spent: a fresh bucket would hold 5
    async with http.patch(proxy.admin + f"/faults/{fault['id']}", json={"params": {"requests_per_minute": 60_000}}) as r:
        assert r.status == 200 and (await r.json())["params"]["requests_per_minute"] == 60_000
    await asyncio.sleep(0.05)  # 1000/s from now: the burst of 5 refills in 5 ms
    assert [(await call(http, proxy, body={"q": i}))[0] for i in range(3)] == [200, 200, 200]


async def test_a_leased_rate_limit_ends_with_its_lease(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    await add_fault(http, proxy, "rate_limit", {"requests_per_minute": 6, "burst": 1}, ttl=0.5)
    assert [(await call(http, proxy, body={"l": i}))[0] for i in range(2)] == [200, 429]
    await asyncio.sleep(0.8)
    assert [(await call(http, proxy, body={"m": i}))[0] for i in range(3)] == [200, 200, 200]
