"""Each fault kind's visible effect, through the proxy started as users start it."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import aiohttp
import pytest


async def _add(client: aiohttp.ClientSession, proxy: Any, body: dict[str, Any]) -> dict[str, Any]:
    async with client.post(proxy.admin + "/faults", json={"route": "api", **body}) as response:
        answer = await response.json()
        assert response.status == 201, answer
        return answer


async def _raw_get(address: str, path: str) -> tuple[bytes, BaseException | None]:
    return await asyncio.to_thread(_raw_get_blocking, address, path)


def _raw_get_blocking(address: str, path: str, timeout: float = 5.0) -> tuple[bytes, BaseException | None]:
    """Send one request on a raw socket; return every byte received and how the read ended."""
    host, port = address.split(":")
    data = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:
            return data, exc
    return data, None


async def test_latency_200ms_arrives_within_25_percent(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "latency", "params": {"delay_ms": 200}})
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        async with client.get(proxy.url("api", "/echo")) as response:
            await response.read()
        timings.append(time.perf_counter() - started)
    median = sorted(timings)[2]
    assert 0.150 <= median <= 0.250, timings


async def test_probability_with_seed_is_reproducible_and_near_30_percent(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied(fault_header=True)
    counts = []
    for run in range(2):
        await _add(client, proxy, {"type": "error", "id": f"p{run}", "seed": 1234, "params": {"status": 503},
                                   "match": {"probability": 0.3}})
        pattern = []
        for _ in range(1000):
            async with client.get(proxy.url("api", "/score")) as response:
                await response.read()
                pattern.append(response.status)
        async with client.get(proxy.admin + f"/faults/p{run}") as response:
            counts.append(((await response.json())["injections"], pattern))
        async with client.delete(proxy.admin + f"/faults/p{run}") as response:
            assert response.status == 200
    (first, pattern_a), (second, pattern_b) = counts
    assert 250 <= first <= 350
    assert pattern_a.count(503) == first
    assert first == second and pattern_a == pattern_b  # same seed, same decisions


async def test_error_answers_without_upstream_with_retry_after(proxied: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    server, _ = upstream
    await _add(client, proxy, {"type": "error", "params": {"status": 429, "headers": {"Retry-After": "3"}}})
    before = server.requests
    async with client.post(proxy.url("api", "/echo"), data=b"x") as response:
        assert response.status == 429 and response.headers["Retry-After"] == "3"
    assert server.requests == before


async def test_reset_is_seen_as_a_connection_reset(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "reset"})
    data, error = await _raw_get(proxy.routes["api"], "/echo")
    assert data == b""
    assert isinstance(error, ConnectionResetError)


async def test_reset_after_n_body_bytes(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "reset", "params": {"after_bytes": 1000}})
    data, error = await _raw_get(proxy.routes["api"], "/bytes/100000")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == 1000 and isinstance(error, ConnectionResetError)


@pytest.mark.parametrize("content_length", ["original", "corrected"])
async def test_truncate_cuts_the_body_at_exactly_n_bytes(proxied: Any, client: aiohttp.ClientSession, content_length: str) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "truncate", "params": {"after_bytes": 777, "content_length": content_length}})
    data, error = await _raw_get(proxy.routes["api"], "/bytes/5000")
    head, _, body = data.partition(b"\r\n\r\n")
    assert error is None
    assert len(body) == 777 and body == (bytes(range(256)) * 4)[:777]
    expected = b"Content-Length: 5000" if content_length == "original" else b"Content-Length: 777"
    assert expected in head


async def test_truncate_with_original_length_is_a_short_read_for_clients(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "truncate", "params": {"fraction": 0.5}})
    async with client.get(proxy.url("api", "/bytes/4000")) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_hang_holds_until_the_client_gives_up(proxied: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "hang", "id": "h"})
    started = time.perf_counter()
    with pytest.raises(asyncio.TimeoutError):
        async with client.get(proxy.url("api", "/echo"), timeout=aiohttp.ClientTimeout(total=0.5)) as response:
            await response.read()
    assert 0.45 <= time.perf_counter() - started < 2
    await _add(client, proxy, {"type": "hang", "id": "h2", "params": {"deadline_ms": 300, "then": "504"}, "match": {"path": "/score"}})
    started = time.perf_counter()
    async with client.delete(proxy.admin + "/faults/h") as response:
        assert response.status == 200
    async with client.get(proxy.url("api", "/score")) as response:
        assert response.status == 504
    assert 0.25 <= time.perf_counter() - started < 2


@pytest.mark.parametrize("mode", ["refuse", "reset", "503"])
async def test_down_looks_like_a_killed_backend(proxied: Any, client: aiohttp.ClientSession, mode: str) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "down", "params": {"mode": mode}})
    data, error = await _raw_get(proxy.routes["api"], "/echo")
    if mode == "refuse":
        assert data == b"" and error is None  # closed without a byte
    elif mode == "reset":
        assert data == b"" and isinstance(error, ConnectionResetError)
    else:
        assert data.startswith(b"HTTP/1.1 503")


async def test_throttle_limits_the_rate(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "throttle", "params": {"bytes_per_s": 100_000}})
    started = time.perf_counter()
    async with client.get(proxy.url("api", "/bytes/50000")) as response:
        body = await response.read()
    elapsed = time.perf_counter() - started
    assert len(body) == 50000
    assert 0.4 <= elapsed <= 0.75, elapsed  # 50 kB at 100 kB/s ≈ 0.5 s


async def test_corrupt_changes_the_score_while_status_stays_200(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "corrupt", "params": {"ops": [{"op": "scale", "path": "$.score", "factor": 3}]}})
    async with client.get(proxy.url("api", "/score")) as response:
        assert response.status == 200
        body = await response.read()
    data = json.loads(body)
    assert data["score"] == pytest.approx(0.75) and data["transaction_id"] == "t-1"
    assert int(response.headers["Content-Length"]) == len(body)  # recomputed for the rewritten body


async def test_match_limits_faults_to_matching_requests(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "error", "params": {"status": 500},
                               "match": {"methods": ["POST"], "path": "/echo/*", "headers": {"X-Tenant": "blue*"},
                                         "body": {"path": "$.user", "equals": "eve"}}})
    cases = [
        ("POST", "/echo/a", {"X-Tenant": "blue-1"}, {"user": "eve"}, 500),
        ("POST", "/echo/a", {"X-Tenant": "blue-1"}, {"user": "bob"}, 200),
        ("POST", "/echo/a", {"X-Tenant": "red"}, {"user": "eve"}, 200),
        ("GET", "/echo/a", {"X-Tenant": "blue-1"}, None, 200),
        ("POST", "/other", {"X-Tenant": "blue-1"}, {"user": "eve"}, 404),
    ]
    for method, path, headers, body, status in cases:
        async with client.request(method, proxy.url("api", path), headers=headers, json=body) as response:
            assert response.status == status, (method, path, headers, body)
            if status == 200 and body is not None:
                assert json.loads((await response.json())["body"]) == body  # the body still reached upstream whole
