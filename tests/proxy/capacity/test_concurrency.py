"""concurrency_limit through the real proxy: N in flight, the next queued then refused after max_queue_ms,
refusal bodies by style, FIFO, the queue-depth gauge and rejection counter, and no slot leaked by clients that leave."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess
from tests.proxy.capacity_helpers import Capacity, add_fault, scrape, value


async def call(http: aiohttp.ClientSession, proxy: ProxyProcess, path: str,
               timeout: float | None = None) -> tuple[int, Any, float, dict[str, str]]:
    started = time.monotonic()
    client_timeout = aiohttp.ClientTimeout(total=timeout) if timeout else aiohttp.ClientTimeout(total=30)
    async with http.post(proxy.url("gpu", path), json={"model": "m"}, timeout=client_timeout) as response:
        raw = await response.read()
        return response.status, json.loads(raw), time.monotonic() - started, dict(response.headers)


async def test_n_in_flight_one_queued_then_refused_after_max_queue_ms(capacity: Capacity,
                                                                      http: aiohttp.ClientSession) -> None:
    proxy, upstream = capacity
    fault = await add_fault(http, proxy, "concurrency_limit", {"max_concurrent": 2, "max_queue": 1, "max_queue_ms": 200,
                                                               "retry_after_s": 1})
    before = await scrape(http, proxy)
    upstream.max_in_flight = 0
    slow = [asyncio.create_task(call(http, proxy, "/v1/messages?ms=900")) for _ in range(2)]
    await asyncio.sleep(0.2)  # both hold their slots
    queued = asyncio.create_task(call(http, proxy, "/v1/messages"))
    await asyncio.sleep(0.05)
    full = await call(http, proxy, "/v1/messages")  # the queue (1) is taken: refused at once
    status, body, elapsed, headers = await queued
    assert status == 529 and body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert elapsed >= 0.195 and headers["Retry-After"] == "1"  # waited its max_queue_ms, not less
    assert full[0] == 529 and full[2] < elapsed
    assert [s for s, _, _, _ in await asyncio.gather(*slow)] == [200, 200]
    assert upstream.max_in_flight == 2
    after = await scrape(http, proxy)
    for reason in ("queue_full", "queue_timeout"):
        assert value(after, "brownout_fault_rejections_total", route="gpu", kind="concurrency_limit", reason=reason) - value(
            before, "brownout_fault_rejections_total", route="gpu", kind="concurrency_limit", reason=reason) == 1
    assert value(after, "brownout_fault_in_flight", route="gpu", fault=fault["id"]) == 0


@pytest.mark.parametrize(("path", "status", "check"), [
    ("/v1/messages", 529, lambda b: b["error"]["type"] == "overloaded_error"),
    ("/v1/chat/completions", 503, lambda b: b["error"]["type"] == "server_error" and b["error"]["param"] is None),
    ("/v1/completions", 503, lambda b: b["error"]["code"] == "server_overloaded"),
    ("/v2/models/resnet/infer", 503, lambda b: b == {"error": "Exceeds maximum queue size"}),
    ("/predict", 503, lambda b: b["error"] == "Service Unavailable" and b["reason"] == "queue_full"),
])
async def test_refusal_body_by_style(capacity: Capacity, http: aiohttp.ClientSession, path: str, status: int,
                                     check: Any) -> None:
    proxy, _ = capacity
    await add_fault(http, proxy, "concurrency_limit", {"max_concurrent": 1})
    holder = asyncio.create_task(call(http, proxy, f"{path}?ms=400"))
    await asyncio.sleep(0.15)
    got, body, _, headers = await call(http, proxy, path)
    assert got == status and check(body), body
    assert "Retry-After" not in headers
    assert (await holder)[0] == 200


async def test_queue_depth_gauge_and_fifo_order(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    fault = await add_fault(http, proxy, "concurrency_limit", {"max_concurrent": 1, "max_queue": 10})
    done: list[int] = []

    async def one(i: int) -> None:
        status, _, _, _ = await call(http, proxy, "/predict?ms=150")
        assert status == 200
        done.append(i)

    tasks = []
    for i in range(4):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0.04)  # arrive in this order
    samples = await scrape(http, proxy)
    assert value(samples, "brownout_fault_in_flight", route="gpu", fault=fault["id"]) == 1
    assert value(samples, "brownout_fault_queue_depth", route="gpu", fault=fault["id"]) >= 2
    await asyncio.gather(*tasks)
    assert done == [0, 1, 2, 3]
    samples = await scrape(http, proxy)
    assert value(samples, "brownout_fault_queue_depth", route="gpu", fault=fault["id"]) == 0


async def test_clients_that_leave_never_leak_a_slot(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    """Clients give up while holding a slot and while queued; afterwards the slot is free at once."""
    proxy, upstream = capacity
    fault = await add_fault(http, proxy, "concurrency_limit", {"max_concurrent": 1, "max_queue": 20})
    impatient = [asyncio.create_task(call(http, proxy, "/predict?ms=500", timeout=0.2 + 0.02 * i)) for i in range(8)]
    results = await asyncio.gather(*impatient, return_exceptions=True)
    assert all(isinstance(r, asyncio.TimeoutError) for r in results), results
    await asyncio.sleep(0.1)  # the proxy sees each disconnect
    samples = await scrape(http, proxy)
    assert value(samples, "brownout_fault_in_flight", route="gpu", fault=fault["id"]) == 0
    assert value(samples, "brownout_fault_queue_depth", route="gpu", fault=fault["id"]) == 0
    status, _, elapsed, _ = await call(http, proxy, "/predict")
    assert status == 200 and elapsed < 0.3
