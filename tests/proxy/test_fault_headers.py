"""Headers through a selected fault: what faults read is what goes on the wire, and a fault that
does not look at them changes nothing (the proxy hands them over as on the wire and decodes them
only when a fault reads them). Raw sockets on both sides, so every byte is compared; the proxy
runs in-process for the test kinds that read headers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from faults import Exchange, ExchangeData, Fault, Outcome, catalogue
from faults.base import PROCEED
from proxy.config import ProxyConfig
from proxy.observers import ExchangeObserver, FaultEffect
from proxy.server import ProxyServer
from tests.conftest import free_port

REQUEST = (b"POST /h?q=1 HTTP/1.1\r\nHost: example.test\r\nX-Request-Id: rid-1\r\nX-Dup: a\r\nx-DUP: b\r\n"
           b"X-Latin: \xe9t\xe9\r\nContent-Length: 3\r\n\r\nabc")
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Dup: 1\r\nx-dup: 2\r\nX-Latin: caf\xe9\r\n"
            b"Content-Length: 5\r\n\r\nhello")
# What faults see (decoded latin-1): the outgoing request headers with the client's Content-Length,
# and upstream's response headers as the proxy forwards them; nothing the proxy adds when sending.
SEEN_REQUEST = [("X-Request-Id", "rid-1"), ("X-Dup", "a"), ("x-DUP", "b"), ("X-Latin", "\xe9t\xe9"),
                ("X-Forwarded-For", "127.0.0.1"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "example.test"),
                ("Content-Length", "3")]
SEEN_RESPONSE = [("Content-Type", "text/plain"), ("X-Dup", "1"), ("x-dup", "2"), ("X-Latin", "caf\xe9"),
                 ("Content-Length", "5")]


@dataclass(frozen=True)
class HeaderReader(Fault):
    """Reads the headers at every hook it has, changes nothing (test only)."""

    kind = "header_reader_test"

    def new_state(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return []

    async def on_request(self, ex: Exchange) -> Outcome:
        ex.state.append(("request", list(ex.request_headers.items())))
        return PROCEED

    async def on_response(self, ex: Exchange) -> Outcome:
        ex.state.append(("response", list(ex.response_headers.items())))
        return PROCEED


@dataclass(frozen=True)
class LateReader(Fault):
    """Reads the headers only when the exchange has ended, after they were sent (test only)."""

    kind = "late_reader_test"

    def new_state(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return []

    def on_exchange_end(self, ex: Exchange) -> None:
        ex.state.append(("request", list(ex.request_headers.items())))
        ex.state.append(("response", list(ex.response_headers.items())))


class RawUpstream:
    """Keeps each request head as received; answers every request with ``RESPONSE``."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                await reader.readexactly(_length(head))
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    return 0


async def _exchange(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        return head + await reader.readexactly(_length(head))
    finally:
        writer.close()


@pytest.fixture
def reader_kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(catalogue, "_BY_NAME", dict(catalogue._BY_NAME))
    catalogue.register(HeaderReader)
    catalogue.register(LateReader)
    yield


@pytest.fixture
async def raw_proxy(reader_kinds: None) -> AsyncIterator[tuple[ProxyServer, RawUpstream, int, str]]:
    upstream = RawUpstream()
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    up_port = server.sockets[0].getsockname()[1]
    port, admin = free_port(), free_port()
    config = ProxyConfig.model_validate({
        "admin": {"listen": f"127.0.0.1:{admin}"}, "fault_header": True,
        "routes": [{"name": "api", "listen": f"127.0.0.1:{port}", "upstream": f"http://127.0.0.1:{up_port}"}],
    })
    proxy = ProxyServer(config)
    await proxy.start()
    try:
        yield proxy, upstream, port, f"http://127.0.0.1:{admin}"
    finally:
        await proxy.stop(grace=1)
        server.close()
        await server.wait_closed()


async def test_headers_are_the_same_bytes_whether_faults_read_them_or_not(
        raw_proxy: tuple[ProxyServer, RawUpstream, int, str]) -> None:
    proxy, upstream, port, admin = raw_proxy
    unfaulted = await _exchange(port)
    results, states = {}, {}
    async with aiohttp.ClientSession() as session:
        for kind, params in (("latency", {"delay_ms": 0}), ("header_reader_test", {}), ("late_reader_test", {})):
            async with session.post(admin + "/faults", json={"route": "api", "type": kind, "id": kind,
                                                             "params": params}) as r:
                assert r.status == 201, await r.text()
            states[kind] = proxy.store.get(kind).state
            results[kind] = await _exchange(port)
            async with session.delete(admin + "/faults") as r:
                assert r.status == 200
    assert len(upstream.heads) == 4 and len(set(upstream.heads)) == 1  # upstream got the same head each time
    for kind, answer in results.items():
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert f"x-brownout-fault: {kind}".encode() in lines
        assert b"\r\n".join(line for line in lines if not line.startswith(b"x-brownout-fault")) + b"\r\n\r\n" + body \
            == unfaulted, kind
    assert b"X-Latin: caf\xe9" in unfaulted and b"X-Latin: \xe9t\xe9" in upstream.heads[0]
    assert states["header_reader_test"] == [("request", SEEN_REQUEST), ("response", SEEN_RESPONSE)]
    assert states["late_reader_test"] == [("request", SEEN_REQUEST), ("response", SEEN_RESPONSE)]  # nothing the proxy added when sending


def test_exchange_data_decodes_wire_headers_when_first_read() -> None:
    wire = [(b"X-A", b"1"), (b"x-a", b"\xff")]
    data = ExchangeData(route="r", request_id="i", method="GET", path="/", now=lambda: 0.0, request_wire=wire)
    assert data.request_wire() is wire and data.response_wire() == ()
    assert data.request_headers.getall("X-A") == ["1", "\xff"]
    assert data.request_wire() is None  # read: from now on the decoded copy is the truth
    data.set_response(200, [(b"Server", b"up")])
    assert data.status == 200 and data.response_wire() == [(b"Server", b"up")]
    data.response_headers = data.response_headers.copy()
    assert data.response_wire() is None and dict(data.response_headers) == {"Server": "up"}
    built = ExchangeData(route="r", request_id="i", method="GET", path="/", now=lambda: 0.0)
    assert len(built.request_headers) == 0 and len(built.response_headers) == 0  # none given: empty


class _Effects(ExchangeObserver):
    def __init__(self) -> None:
        self.request_ids: list[str] = []

    def fault_effect(self, effect: FaultEffect) -> None:
        self.request_ids.append(effect.request_id)


async def test_the_request_id_is_the_clients_first_x_request_id_in_any_case_else_ours(
        raw_proxy: tuple[ProxyServer, RawUpstream, int, str]) -> None:
    proxy, _, port, admin = raw_proxy
    effects = _Effects()
    proxy.http_routes[0].observers.append(effects)
    async with aiohttp.ClientSession() as session:
        async with session.post(admin + "/faults", json={"route": "api", "type": "latency", "params": {}}) as r:
            assert r.status == 201
    heads = [b"x-REQUEST-id: low\r\nX-Request-Id: second\r\n", b"", b"X-Request-Id: \r\n", b"X-Request-Idx: no\r\n"]
    for extra in heads:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: h\r\n" + extra + b"\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(_length(head))
        writer.close()
    first, *generated = effects.request_ids
    assert first == "low"
    assert len(generated) == 3 and len(set(generated)) == 3
    assert all(rid.startswith(f"{os.getpid():x}-api-") for rid in generated)
