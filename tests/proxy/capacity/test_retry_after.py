"""Retry-After kept by the proxy: retries that come back too early are counted exactly, by request identity
(Idempotency-Key, X-Request-ID, or the body); polite ones are not; arrivals = upstream's + the fault's."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp

from tests.conftest import ProxyProcess
from tests.proxy.capacity_helpers import Capacity, add_fault, arrivals, scrape, value

VIOLATIONS = "brownout_retry_after_violations_total"


async def send(http: aiohttp.ClientSession, proxy: ProxyProcess, body: Any, headers: dict[str, str] | None = None,
               path: str = "/v1/chat/completions") -> tuple[int, float | None]:
    async with http.post(proxy.url("gpu", path), json=body, headers=headers) as response:
        await response.read()
        retry_after = response.headers.get("Retry-After")
        return response.status, float(retry_after) if retry_after is not None else None


async def violations(http: aiohttp.ClientSession, proxy: ProxyProcess) -> float:
    return value(await scrape(http, proxy), VIOLATIONS, route="gpu")


async def test_the_counter_is_there_before_any_violation(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    assert (VIOLATIONS, (("route", "gpu"),)) in await scrape(http, capacity[0])


async def test_eager_retries_are_counted_exactly_and_polite_ones_not(capacity: Capacity,
                                                                    http: aiohttp.ClientSession) -> None:
    """One request a second per tenant. The eager client retries at once, three times, then waits; the polite
    one waits as told. Only the three early retries are violations."""
    proxy, upstream = capacity
    await add_fault(http, proxy, "rate_limit", {"requests_per_minute": 60, "burst": 1, "key": "header:X-Tenant"})
    before, upstream_before, start = await scrape(http, proxy), upstream.arrivals, await violations(http, proxy)
    eager = {"X-Tenant": "eager"}
    assert (await send(http, proxy, {"q": 0}, {**eager, "X-Request-ID": "eager-0"}))[0] == 200
    sends, statuses, retry_after = 1, [], 0.0
    for _ in range(4):  # the first attempt, then three immediate retries of the same request
        status, retry_after = await send(http, proxy, {"q": 1}, {**eager, "X-Request-ID": "eager-1"})
        statuses.append(status)
        sends += 1
    assert statuses == [429] * 4 and retry_after == 1
    await asyncio.sleep(retry_after + 0.05)
    assert (await send(http, proxy, {"q": 1}, {**eager, "X-Request-ID": "eager-1"}))[0] == 200
    sends += 1
    assert await violations(http, proxy) - start == 3

    polite = {"X-Tenant": "polite"}
    assert (await send(http, proxy, {"q": 0}, {**polite, "X-Request-ID": "polite-0"}))[0] == 200
    status, retry_after = await send(http, proxy, {"q": 1}, {**polite, "X-Request-ID": "polite-1"})
    assert status == 429 and retry_after is not None
    await asyncio.sleep(retry_after + 0.05)
    assert (await send(http, proxy, {"q": 1}, {**polite, "X-Request-ID": "polite-1"}))[0] == 200
    sends += 3
    assert await violations(http, proxy) - start == 3  # the polite client added none

    after = await scrape(http, proxy)
    rejected = value(after, "brownout_fault_rejections_total", route="gpu", kind="rate_limit", reason="requests") - value(
        before, "brownout_fault_rejections_total", route="gpu", kind="rate_limit", reason="requests")
    assert rejected == 5
    # Every send arrived, whoever answered it: the model server's requests plus the fault's 429s.
    assert arrivals(after, "gpu") - arrivals(before, "gpu") == sends == (upstream.arrivals - upstream_before) + rejected


async def test_without_an_id_header_the_body_is_the_identity(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    await add_fault(http, proxy, "error", {"status": 503, "headers": {"Retry-After": "30"}},
                    match={"path": "/v1/embeddings"})
    start = await violations(http, proxy)
    body = {"input": "the same request", "n": 1}
    assert (await send(http, proxy, body, path="/v1/embeddings"))[0] == 503
    assert (await send(http, proxy, body, path="/v1/embeddings"))[0] == 503  # the same body: a retry, too early
    assert (await send(http, proxy, {**body, "n": 2}, path="/v1/embeddings"))[0] == 503  # another request
    assert await violations(http, proxy) - start == 1


async def test_idempotency_key_wins_over_a_fresh_request_id(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    """SDKs give each attempt a new X-Request-ID but keep the Idempotency-Key: the key says it is a retry."""
    proxy, _ = capacity
    await add_fault(http, proxy, "down", {"mode": "503", "retry_after_s": 30}, match={"path": "/v1/completions"})
    start = await violations(http, proxy)
    for attempt in range(3):
        headers = {"Idempotency-Key": "op-42", "X-Request-ID": f"attempt-{attempt}"}
        assert (await send(http, proxy, {"prompt": "x"}, headers, path="/v1/completions"))[0] == 503
    assert await violations(http, proxy) - start == 2


async def test_concurrency_limit_retry_after_is_kept_too(capacity: Capacity, http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    await add_fault(http, proxy, "concurrency_limit", {"max_concurrent": 1, "retry_after_s": 5},
                    match={"path": "/v2/*"})
    start = await violations(http, proxy)
    holder = asyncio.create_task(send(http, proxy, {"inputs": []}, path="/v2/models/m/infer?ms=500"))
    await asyncio.sleep(0.15)
    for _ in range(3):
        status, retry_after = await send(http, proxy, {"inputs": [1]}, {"X-Request-ID": "infer-7"}, "/v2/models/m/infer")
        assert status == 503 and retry_after == 5
    assert (await holder)[0] == 200
    assert await violations(http, proxy) - start == 2


def _post_in_two_parts(address: str, body: bytes) -> bytes:
    """A POST whose body comes 50 ms after its head (a separate read on the proxy's side)."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        time.sleep(0.05)
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


async def test_a_body_that_comes_after_its_head_is_still_the_identity(capacity: Capacity,
                                                                      http: aiohttp.ClientSession) -> None:
    proxy, _ = capacity
    await add_fault(http, proxy, "error", {"status": 429, "headers": {"Retry-After": "30"}},
                    match={"path": "/v1/embeddings"})
    start = await violations(http, proxy)
    for _ in range(3):
        answer = await asyncio.to_thread(_post_in_two_parts, proxy.routes["gpu"], b'{"input": "late body"}')
        assert answer.startswith(b"HTTP/1.1 429")
    assert await violations(http, proxy) - start == 2
