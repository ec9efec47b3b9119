"""Limits on the wire, on raw sockets: a request head that never completes, too many open
connections, and an HTTP/1.1 request without Host."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

from tests.conftest import wait_for

GET = b"GET /score HTTP/1.1\r\nHost: x\r\n\r\n"


def _connect(address: str, timeout: float = 10.0) -> socket.socket:
    host, port = address.split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def _read_until_close(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _json_answer(data: bytes) -> tuple[bytes, dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head, json.loads(body)


def _stalled_head(address: str, head: bytes) -> tuple[float, bytes]:
    with _connect(address) as sock:
        started = time.perf_counter()
        sock.sendall(head)
        data = _read_until_close(sock)
        return time.perf_counter() - started, data


def _slow_but_complete_head(address: str) -> bytes:
    with _connect(address) as sock:
        sock.sendall(GET[:10])
        time.sleep(0.2)
        sock.sendall(GET[10:].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        return _read_until_close(sock)


async def test_a_head_that_never_completes_gets_a_408_after_header_timeout(proxied: Any) -> None:
    proxy = proxied(route={"header_timeout": "500ms"})
    address = proxy.routes["api"]
    elapsed, data = await asyncio.to_thread(_stalled_head, address, b"GET /score HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    head, body = _json_answer(data)
    assert head.startswith(b"HTTP/1.1 408") and b"Connection: close" in head
    assert body == {"error": "request head not complete within 0.5s", "route": "api"}
    assert 0.45 <= elapsed < 5.0, elapsed  # closed after the timeout, not held for a minute
    # A head that is slow but completes within the timeout is served.
    assert (await asyncio.to_thread(_slow_but_complete_head, address)).startswith(b"HTTP/1.1 200")


def _hold_connections(address: str, count: int) -> list[socket.socket]:
    """Open ``count`` keep-alive connections, each with one request answered (so each is accepted)."""
    socks = []
    for _ in range(count):
        sock = _connect(address)
        sock.sendall(GET)
        data = b""
        while b'"model_version"' not in data:
            data += sock.recv(65536)
        socks.append(sock)
    return socks


def _one_more(address: str) -> bytes:
    with _connect(address) as sock:
        sock.sendall(GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        return _read_until_close(sock)


async def test_connections_over_max_connections_are_refused_clearly(proxied: Any) -> None:
    proxy = proxied(route={"max_connections": 2})
    address = proxy.routes["api"]
    held = await asyncio.to_thread(_hold_connections, address, 2)
    try:
        head, body = _json_answer(await asyncio.to_thread(_one_more, address))
        assert head.startswith(b"HTTP/1.1 503") and b"Connection: close" in head
        assert body["route"] == "api" and body["max_connections"] == 2 and "limit of 2" in body["error"]
        await wait_for(lambda: any(e.get("event") == "connections_refused" for e in proxy.log_events()))
        [event] = [e for e in proxy.log_events() if e.get("event") == "connections_refused"]
        assert event["route"] == "api" and event["max_connections"] == 2
    finally:
        held.pop().close()
    # One slot is free again: a new connection is served (once the proxy saw the close).
    deadline = time.monotonic() + 5
    while not (answer := await asyncio.to_thread(_one_more, address)).startswith(b"HTTP/1.1 200"):
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.05)
    held.pop().close()


def _request(address: str, raw: bytes) -> bytes:
    with _connect(address) as sock:
        sock.sendall(raw)
        return _read_until_close(sock)


async def test_http11_without_host_is_a_400_http10_may_omit_it(proxied: Any, upstream: Any) -> None:
    proxy = proxied()
    server, _ = upstream
    address = proxy.routes["api"]
    head, body = _json_answer(await asyncio.to_thread(_request, address, b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 400") and body["cause"] == "host" and "Host" in body["error"]
    assert server.requests == 0
    answer = await asyncio.to_thread(_request, address, b"GET /echo HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and server.requests == 1
