"""HTTP/1.1 on the wire through the proxy: pipelining, HTTP/1.0, chunked and 100-continue
bodies, malformed requests, and upstreams that misbehave at the byte level."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _exchange(address: str, data: bytes, *, wait_close: bool = True, timeout: float = 5.0) -> bytes:
    """Send raw bytes to the proxy and read what comes back (until it closes, or a pause)."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        sock.settimeout(timeout if wait_close else 0.5)
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            if wait_close:
                raise
    return b"".join(chunks)


def _responses(raw: bytes) -> list[tuple[bytes, bytes]]:
    """Split Content-Length framed responses: [(head, body), ...]."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        out.append((head, rest[:length]))
        raw = rest[length:]
    return out


async def test_pipelined_requests_are_answered_in_order(proxied: Any) -> None:
    proxy = proxied()
    requests = b"".join(b"GET /echo?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3))
    raw = await asyncio.to_thread(_exchange, proxy.routes["api"], requests, wait_close=False)
    answers = _responses(raw)
    assert [json.loads(body)["path_qs"] for _, body in answers] == ["/echo?i=0", "/echo?i=1", "/echo?i=2"]


async def test_http10_client_gets_a_close_delimited_response(proxied: Any) -> None:
    proxy = proxied()
    raw = await asyncio.to_thread(_exchange, proxy.routes["api"], b"GET /paced HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"chunked" not in head.lower()  # an HTTP/1.0 client cannot read chunks: the close ends the body
    assert body == b"".join(b"chunk-%d\n" % i for i in range(5))


async def test_chunked_request_body_reaches_upstream_whole(proxied: Any) -> None:
    proxy = proxied()
    request = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    raw = await asyncio.to_thread(_exchange, proxy.routes["api"], request)
    (head, body), = _responses(raw)
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert json.loads(body)["body"] == "hello world"


async def test_expect_100_continue_is_answered_before_the_body_is_sent(proxied: Any) -> None:
    proxy = proxied()
    host, port = proxy.routes["api"].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1])
    seen = json.loads(await reader.readexactly(length))
    writer.close()
    assert seen["body"] == "hello"
    assert "expect" not in {k.lower() for k, _ in seen["headers"]}


async def test_malformed_request_is_a_400_and_a_huge_head_a_431(proxied: Any) -> None:
    proxy = proxied()
    raw = await asyncio.to_thread(_exchange, proxy.routes["api"], b"GARBAGE\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400") and b"malformed HTTP request" in raw
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    raw = await asyncio.to_thread(_exchange, proxy.routes["api"], huge)
    assert raw.startswith(b"HTTP/1.1 431")
    async with aiohttp.ClientSession() as session, session.get(proxy.url("api", "/echo")) as response:
        assert response.status == 200  # and the proxy is fine


# -- upstreams that misbehave at the byte level


@pytest.fixture
async def scripted(proxy_factory: Any) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await scripted(script, **route)``: a raw upstream running ``script`` per connection, and
    a proxy in front of it. Yields the proxy; ``proxy.upstream_events`` records what happened."""
    servers: list[asyncio.AbstractServer] = []

    async def start(script: Script, **route: Any) -> Any:
        events: list[str] = []

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            events.append("connected")
            try:
                await script(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        proxy = proxy_factory({"routes": [{"name": "raw", "upstream": f"http://127.0.0.1:{port}", **route}]})
        proxy.upstream_events = events
        return proxy

    yield start
    for server in servers:
        server.close()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def _answer_with(data: bytes) -> Script:
    """An upstream that reads one request head, answers ``data`` and waits for the proxy to close."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(data)
        await writer.drain()
        await reader.read()

    return script


async def test_upstream_interim_100_continue_is_not_forwarded(scripted: Any) -> None:
    proxy = await scripted(_answer_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    async with aiohttp.ClientSession() as session, session.get(proxy.url("raw", "/")) as response:
        assert response.status == 200 and await response.read() == b"ok"


async def test_close_delimited_upstream_body_arrives_whole_and_framed(scripted: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for piece in (b"abc", b"def", b"ghi"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
        # returning closes the connection: that ends the body

    proxy = await scripted(script)
    raw = await asyncio.to_thread(_exchange, proxy.routes["raw"], b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\n\r\n") and b"".join(body.split(b"\r\n")[1::2]) == b"abcdefghi"


async def test_upstream_closing_an_idle_connection_is_retried_once(scripted: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # then closes, as a server with a short keep-alive timeout does

    proxy = await scripted(script)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(proxy.url("raw", "/")) as response:
                assert response.status == 200 and await response.read() == b"ok"
            await asyncio.sleep(0.2)
    assert proxy.upstream_events.count("connected") == 3


async def test_upstream_silent_mid_body_breaks_the_response_after_the_timeout(scripted: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
        await writer.drain()
        await asyncio.sleep(10)

    proxy = await scripted(script, timeout="300ms")
    started = asyncio.get_running_loop().time()
    async with aiohttp.ClientSession() as session, session.get(proxy.url("raw", "/")) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(response.read(), 5)
    assert asyncio.get_running_loop().time() - started < 3


async def test_garbage_from_upstream_is_a_502(scripted: Any) -> None:
    proxy = await scripted(_answer_with(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    async with aiohttp.ClientSession() as session, session.get(proxy.url("raw", "/")) as response:
        body = await response.json()
    assert response.status == 502 and body["cause"] == "protocol"


async def test_client_going_away_closes_the_upstream_request(scripted: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        if await reader.read() == b"":  # never answers; sees the proxy hang up
            events.append("upstream saw the close")

    proxy = await scripted(script)
    events = proxy.upstream_events
    host, port = proxy.routes["raw"].split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.3)
    writer.close()
    for _ in range(100):
        if "upstream saw the close" in events:
            break
        await asyncio.sleep(0.05)
    assert "upstream saw the close" in events


async def test_body_predicates_read_the_body_once_and_bound_it(proxied: Any) -> None:
    proxy = proxied(max_request_body=1000, faults=[{
        "type": "error", "route": "api", "params": {"status": 503},
        "match": {"body": {"path": "$.user", "equals": "bob"}}}])
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url("api", "/echo"), json={"user": "bob"}) as response:
            assert response.status == 503  # the predicate saw the body
        async with session.post(proxy.url("api", "/echo"), json={"user": "alice"}) as response:
            assert response.status == 200  # not matched: the body read for the test still reaches upstream
            assert json.loads((await response.json())["body"]) == {"user": "alice"}
        async with session.post(proxy.url("api", "/echo"), data=b"x" * 5000) as response:
            assert response.status == 413 and "1000 bytes" in (await response.json())["error"]



# -- regressions found in review: each failed before its fix


async def _raw_get(address: str, path: bytes, extra: bytes = b"") -> bytes:
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (path, extra))
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


async def test_an_unread_big_body_never_leaves_a_paused_connection_in_the_pool(scripted: Any, proxy_factory: Any) -> None:
    big = b"x" * (300 * 1024)  # over the 256 KiB high-water mark: reading pauses while nobody reads it

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await _read_head(reader)
            except asyncio.IncompleteReadError:
                return
            body = big if head.split(b" ")[1] == b"/big" else b"ok"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    proxy = await scripted(script, timeout="3s")
    async with aiohttp.ClientSession() as session:
        for fault in ({"type": "latency", "params": {"delay_ms": 300, "phase": "response"}},
                      {"type": "error", "params": {"status": 503, "phase": "response"}}):
            await session.post(proxy.admin + "/faults", json={**fault, "route": "raw", "match": {"path": "/big"}})
    assert (await _raw_get(proxy.routes["raw"], b"/big")).startswith(b"HTTP/1.1 503")
    started = asyncio.get_running_loop().time()
    assert (await _raw_get(proxy.routes["raw"], b"/small")).startswith(b"HTTP/1.1 200")
    assert asyncio.get_running_loop().time() - started < 1.5  # not the 3 s read timeout


async def test_a_malformed_chunked_body_is_a_400_not_a_crash(scripted: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        await reader.read()

    proxy = await scripted(script)
    host, port = proxy.routes["raw"].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await asyncio.sleep(0.3)
    writer.write(b"zz-not-a-chunk\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"malformed request body" in answer
    assert not [e for e in proxy.log_events() if e.get("event") == "request_failed"]


async def test_a_client_that_pipelines_and_never_reads_is_held_back(scripted: Any) -> None:
    body = b"y" * 16384
    answered = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        while True:
            try:
                await _read_head(reader)
            except asyncio.IncompleteReadError:
                return
            answered += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    proxy = await scripted(script)
    host, port = proxy.routes["raw"].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    request = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for _ in range(200):  # 20,000 requests, never reading an answer
            await asyncio.wait_for(loop.sock_sendall(sock, request * 100), 0.2)
    except TimeoutError:
        pass  # the proxy stopped reading: our send buffer filled, as it should
    await asyncio.sleep(0.5)
    sock.close()
    assert answered < 2000, f"the proxy answered {answered} requests nobody read (about {answered * 16} KiB held)"


async def test_upstream_framing_survives_a_connection_header_naming_it(scripted: Any) -> None:
    proxy = await scripted(_answer_with(b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"))
    raw = await _raw_get(proxy.routes["raw"], b"/")
    assert b"Content-Length: 5\r\n" in raw and raw.endswith(b"\r\n\r\nhello")


async def test_upstream_101_and_odd_transfer_codings(scripted: Any) -> None:
    proxy = await scripted(_answer_with(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"))
    async with aiohttp.ClientSession() as session, session.get(proxy.url("raw", "/")) as response:
        assert response.status == 502 and (await response.json())["cause"] == "protocol"

    async def gzip_coded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nGZBYTES")  # ends when the upstream closes

    proxy = await scripted(gzip_coded)
    raw = await _raw_get(proxy.routes["raw"], b"/")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: gzip" in head and b"Transfer-Encoding: chunked" in head
    assert body == b"7\r\nGZBYTES\r\n0\r\n\r\n"


async def test_fault_headers_outside_latin1_and_absolute_form_targets(proxied: Any) -> None:
    proxy = proxied(faults=[{"type": "error", "route": "api", "params": {"status": 503, "headers": {"X-Msg": "price €5"}},
                             "match": {"path": "/euro"}}])
    raw = await _raw_get(proxy.routes["api"], b"/euro")
    assert raw.startswith(b"HTTP/1.1 503") and "X-Msg: price €5".encode() in raw
    raw = await _raw_get(proxy.routes["api"], b"http://other.example/echo?via=absolute")
    seen = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert seen["path_qs"] == "/echo?via=absolute"  # reduced to a path: the upstream never sees another host
    connect = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    raw = await asyncio.to_thread(_exchange, proxy.routes["api"], connect)
    assert raw.startswith(b"HTTP/1.1 400") and b"reverse proxy" in raw
