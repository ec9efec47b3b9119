"""Connection-phase faults run once per accepted connection, before a request byte is read;
request-phase ones (``down`` included) per request, on connections already open too."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from faults import Exchange, Fault, Outcome, Respond
from faults.errors import InvalidInput
from faults.match import Match
from proxy.config import ProxyConfig
from proxy.server import ProxyServer
from tests.conftest import free_port, wait_for
from tests.proxy.upstream import SCORE_BODY

GET = b"GET /score HTTP/1.1\r\nHost: x\r\n\r\n"


async def _add(session: aiohttp.ClientSession, proxy: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with session.post(proxy.admin + "/faults", json={"route": "api", **body}) as response:
        return response.status, await response.json()


def _connect(address: str, timeout: float = 5.0) -> socket.socket:
    host, port = address.split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def _read_response(sock: socket.socket) -> bytes:
    """One Content-Length framed response from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _recv_outcome(sock: socket.socket) -> bytes | BaseException:
    """What the next read gives: bytes (b"" for a FIN), or the error (reset, timeout)."""
    try:
        return sock.recv(65536)
    except OSError as exc:
        return exc


def _connection_reset_without_sending(address: str) -> bytes | BaseException:
    try:
        sock = _connect(address)
    except ConnectionResetError as exc:  # so fast that connect() already saw the RST
        return exc
    with sock:
        return _recv_outcome(sock)


def _request_phase_reset(address: str) -> tuple[bytes | BaseException, bytes | BaseException]:
    with _connect(address) as sock:
        sock.settimeout(0.5)
        before = _recv_outcome(sock)  # nothing happens until a request head arrives
        sock.settimeout(5)
        sock.sendall(GET)
        return before, _recv_outcome(sock)


async def test_reset_at_connection_comes_before_any_request_and_at_request_only_after_a_head(
        proxied: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    server, _ = upstream
    status, _ = await _add(client, proxy, {"type": "reset", "id": "conn", "params": {"phase": "connection"}})
    assert status == 201
    outcome = await asyncio.to_thread(_connection_reset_without_sending, proxy.routes["api"])
    assert isinstance(outcome, ConnectionResetError), outcome
    async with client.delete(proxy.admin + "/faults/conn") as r:
        assert r.status == 200

    status, _ = await _add(client, proxy, {"type": "reset", "id": "req", "params": {"phase": "request"}})
    assert status == 201
    before, after = await asyncio.to_thread(_request_phase_reset, proxy.routes["api"])
    assert isinstance(before, TimeoutError), before  # the connection stays open while no request came
    assert isinstance(after, ConnectionResetError), after
    assert server.requests == 0  # neither reached upstream

    def effects() -> list[dict[str, Any]]:  # the proxy's log, written as it goes: wait for both lines
        return [e for e in proxy.log_events() if e.get("event") == "fault_injected"]

    await wait_for(lambda: len(effects()) >= 2)
    assert [(e["fault_id"], e["hook"], e["details"]) for e in effects()] == [
        ("conn", "on_connection", {"phase": "connection"}), ("req", "on_request", {"phase": "request"})]


def _keep_alive_requests(address: str, count: int) -> list[bytes]:
    with _connect(address) as sock:
        answers = []
        for _ in range(count):
            sock.sendall(GET)
            answers.append(_read_response(sock))
        return answers


async def test_connection_phase_counts_connections_not_requests(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    status, _ = await _add(client, proxy, {"type": "reset", "id": "r", "params": {"phase": "connection"},
                                           "match": {"first_n": 2}})
    assert status == 201
    for _ in range(2):
        assert isinstance(await asyncio.to_thread(_connection_reset_without_sending, proxy.routes["api"]),
                          ConnectionResetError)
    answers = await asyncio.to_thread(_keep_alive_requests, proxy.routes["api"], 5)  # the 3rd connection
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    async with client.get(proxy.admin + "/faults/r") as r:
        assert (await r.json())["injections"] == 2


@pytest.mark.parametrize("key", ["methods", "path", "headers", "body"])
async def test_a_connection_phase_fault_cannot_match_on_the_request(proxied: Any, client: aiohttp.ClientSession,
                                                                   key: str) -> None:
    proxy = proxied()
    match = {"methods": ["GET"], "path": "/score", "headers": {"X-A": "b"}, "body": {"path": "$.a", "equals": 1}}[key]
    status, answer = await _add(client, proxy, {"type": "reset", "params": {"phase": "connection"},
                                                "match": {key: match, "probability": 0.5}})
    assert status == 400
    assert answer["field"] == f"match.{key}"
    assert "a connection-phase fault matches only on probability and counts" in answer["error"]
    # A change of parameters that makes a fault connection-phase is checked the same way.
    status, _ = await _add(client, proxy, {"type": "reset", "id": "later", "match": {key: match}})
    assert status == 201
    async with client.patch(proxy.admin + "/faults/later", json={"params": {"phase": "connection"}}) as r:
        assert r.status == 400 and (await r.json())["field"] == f"match.{key}"


def _request_then_wait(address: str, ready: threading.Event, go: threading.Event) -> tuple[bytes, bytes]:
    with _connect(address) as sock:
        sock.sendall(GET)
        first = _read_response(sock)
        ready.set()
        go.wait(10)
        sock.sendall(GET)
        return first, _read_response(sock)


@pytest.mark.parametrize("mode", ["503", "refuse"])
async def test_down_is_seen_on_keep_alive_connections_opened_before_it(proxied: Any, client: aiohttp.ClientSession,
                                                                       mode: str) -> None:
    proxy = proxied()
    ready, go = threading.Event(), threading.Event()
    task = asyncio.create_task(asyncio.to_thread(_request_then_wait, proxy.routes["api"], ready, go))
    await asyncio.to_thread(ready.wait, 10)
    status, _ = await _add(client, proxy, {"type": "down", "params": {"mode": mode}})
    assert status == 201
    go.set()
    first, second = await task
    assert first.startswith(b"HTTP/1.1 200")
    if mode == "503":
        assert second.startswith(b"HTTP/1.1 503")
    else:
        assert second == b""  # closed without a byte


# -- a connection-phase Respond, with a kind that exists only in this test (in-process proxy)


@dataclass(frozen=True)
class Busy(Fault):
    """Answers every new connection with 503, before it sends anything."""

    kind = "busy_test"

    async def on_connection(self, ex: Exchange) -> Outcome:
        ex.report(status=503)
        return Respond(503, b'{"busy": true}', (("Content-Type", "application/json"),))


def _answer_to_a_request(address: str) -> bytes:
    with _connect(address) as sock:
        sock.sendall(GET)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


async def test_a_connection_phase_respond_answers_and_closes(upstream: Any) -> None:
    server_upstream, url = upstream
    config = ProxyConfig.model_validate({
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "routes": [{"name": "api", "listen": f"127.0.0.1:{free_port()}", "upstream": url}],
    })
    server = ProxyServer(config)
    await server.start()
    try:
        active = server.store.add(fault_id="busy", fault_type="busy_test", route="api", fault=Busy(),
                                  match=Match(first_n=1), ttl=60, seed=1)
        assert server.store.for_route("api") == () and server.store.for_connections("api") == (active,)
        data = await asyncio.to_thread(_answer_to_a_request, config.routes[0].listen)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"Connection: close" in head
        assert json.loads(body) == {"busy": True}  # then the connection closed: the read ended
        assert server_upstream.requests == 0
        async with aiohttp.ClientSession() as session, session.get(f"http://{config.routes[0].listen}/score") as r:
            assert r.status == 200 and await r.json() == SCORE_BODY  # first_n: 1 connection only
        await wait_for(lambda: active.injections == 1)
        with pytest.raises(InvalidInput, match="connection-phase"):
            server.store.add(fault_id="x", fault_type="busy_test", route="api", fault=Busy(),
                             match=Match(path="/x"), ttl=60, seed=1)
    finally:
        await server.stop(grace=1)
