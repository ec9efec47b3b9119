"""Exchange taps on a real proxy: what an observer following an exchange sees is what the client sent and got."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from brownout.demo.web import free_port
from proxy.config import ProxyConfig
from proxy.observers import ExchangeEnd, ExchangeObserver, ExchangeStart, ExchangeTap
from proxy.server import ProxyServer


class Recording(ExchangeTap):
    wants_bodies = True

    def __init__(self, start: ExchangeStart) -> None:
        self.start = start
        self.request = bytearray()
        self.response = bytearray()
        self.head: tuple[int, dict[str, str]] | None = None
        self.upstream: tuple[int | None, str | None] | None = None
        self.end: ExchangeEnd | None = None

    def upstream_request(self, headers: list[tuple[bytes, bytes]]) -> None:
        headers.append((b"X-Tapped", self.start.request_id.encode()))

    def upstream_answered(self, status: int | None, cause: str | None) -> None:
        self.upstream = (status, cause)

    def request_piece(self, piece: bytes) -> None:
        self.request += piece

    def response_head(self, status: int, headers: Any) -> None:
        self.head = (status, {k.decode().lower(): v.decode() for k, v in headers})

    def response_piece(self, piece: bytes) -> None:
        self.response += piece

    def ended(self, end: ExchangeEnd) -> None:
        self.end = end


class Follower(ExchangeObserver):
    """Follows every exchange whose target does not contain ``skip``; one tap raises on purpose."""

    def __init__(self) -> None:
        self.taps: list[Recording] = []

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        if "skip" in start.target:
            return None
        tap = Recording(start)
        self.taps.append(tap)
        return tap


class BrokenTap(ExchangeTap):
    __slots__ = ()

    def response_head(self, status: int, headers: Any) -> None:
        raise RuntimeError("a broken tap")


class Broken(ExchangeObserver):
    """Its tap raises: it is dropped from the exchange, which goes on for the others."""

    def __init__(self) -> None:
        self.started = 0

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        self.started += 1
        return BrokenTap()


@pytest.fixture
async def proxy(upstream: Any) -> AsyncIterator[Any]:
    config = ProxyConfig.model_validate({
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "routes": [{"name": "api", "listen": f"127.0.0.1:{free_port()}", "upstream": upstream[1]},
                   {"name": "dead", "listen": f"127.0.0.1:{free_port()}", "upstream": f"http://127.0.0.1:{free_port()}"}],
    })
    server = ProxyServer(config)
    await server.start()
    server.follower, server.broken = Follower(), Broken()
    for route in server.http_routes:
        route.observers += [server.broken, server.follower]
    server.url = lambda route, path: f"http://{config.route(route).listen}{path}"  # type: ignore[union-attr]
    server.admin = f"http://{config.admin.listen}"
    try:
        yield server
    finally:
        await server.stop(grace=1)


async def test_a_tap_sees_both_bodies_as_sent_and_can_add_upstream_headers(proxy: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url("api", "/echo?q=1"), data=b"hello tap") as r:
            answer = await r.read()
        async def pieces() -> AsyncIterator[bytes]:
            for part in (b"chunk-one ", b"chunk-two"):
                yield part
        async with session.post(proxy.url("api", "/echo"), data=pieces()) as r:
            chunked_answer = await r.read()
    first, second = proxy.follower.taps
    assert proxy.broken.started == 2  # each exchange asked the broken observer too, and went on without it
    assert first.start.target == "/echo?q=1" and first.start.method == "POST"
    assert bytes(first.request) == b"hello tap" and bytes(second.request) == b"chunk-one chunk-two"
    assert bytes(first.response) == answer and bytes(second.response) == chunked_answer
    assert first.head is not None and first.head[0] == 200 and first.upstream == (200, None)
    upstream_saw = dict(json.loads(answer)["headers"])
    assert upstream_saw["X-Tapped"] == first.start.request_id
    assert first.end is not None and first.end.status == 200


async def test_a_tap_sees_what_a_fault_made_of_the_response(proxy: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.admin + "/faults", json={"type": "truncate", "route": "api",
                                                               "params": {"after_bytes": 10, "content_length": "corrected"}}) as r:
            assert r.status == 201
        async with session.get(proxy.url("api", "/bytes/5000")) as r:
            got = await r.read()
        async with session.post(proxy.admin + "/faults", json={"type": "error", "route": "api",
                                                               "params": {"status": 503}}) as r:
            assert r.status == 201
        async with session.get(proxy.url("api", "/bytes/5000")) as r:
            refused = (r.status, await r.read())
    cut, answered = proxy.follower.taps
    assert len(got) == 10 and bytes(cut.response) == got
    assert answered.head is not None and answered.head[0] == 503 and bytes(answered.response) == refused[1]
    assert answered.upstream is None  # the fault answered: nothing went upstream
    assert answered.end is not None and {e.kind for e in answered.end.effects} >= {"error"}


async def test_a_failed_upstream_and_an_unfollowed_exchange(proxy: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.url("dead", "/x")) as r:
            assert r.status == 502
            body = await r.read()
        async with session.get(proxy.url("api", "/echo/skip")) as r:
            assert r.status == 200
    [dead] = proxy.follower.taps
    assert dead.upstream == (None, "connect") and dead.head is not None and dead.head[0] == 502
    assert bytes(dead.response) == body


async def test_a_streamed_response_is_seen_piece_by_piece_even_when_the_client_leaves(proxy: Any) -> None:
    host, port = proxy.url("api", "/").split("//")[1].rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    while b"data: first" not in received:
        received += await asyncio.wait_for(reader.read(65536), 5)
    # The first event reached the client while the stream is still open: the tap saw it then.
    [tap] = proxy.follower.taps
    assert tap.head is not None and tap.head[0] == 200 and bytes(tap.response) == b"data: first\n\n"
    assert tap.end is None
    writer.close()
    # The client went away mid-stream: the tap still ends, as a 499, with what the client got.
    for _ in range(500):
        if tap.end is not None:
            break
        await asyncio.sleep(0.01)
    assert tap.end is not None and tap.end.status == 499
    assert bytes(tap.response) == b"data: first\n\n"
