"""The reverse proxy with no fault: byte-exact, streaming, correct headers and errors."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from typing import Any

import aiohttp

from tests.conftest import free_port, wait_for


async def test_passthrough_is_byte_exact_with_query_and_repeated_headers(proxied: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    direct_url = upstream[1] + "/echo/a%2Fb?x=1&x=2&y=%C3%A9"
    via_url = proxy.url("api", "/echo/a%2Fb?x=1&x=2&y=%C3%A9")
    headers = [("X-Multi", "1"), ("X-Multi", "2"), ("Content-Type", "application/json")]
    async with client.post(via_url, data=b'{"a": 1}', headers=headers) as response:
        via = await response.read()
        assert response.status == 200
    seen = json.loads(via)
    assert seen["path_qs"] == "/echo/a%2Fb?x=1&x=2&y=%C3%A9"
    assert seen["body"] == '{"a": 1}'
    pairs = [tuple(p) for p in seen["headers"]]
    assert ("X-Multi", "1") in pairs and ("X-Multi", "2") in pairs
    names = {k.lower(): v for k, v in pairs}
    assert names["x-forwarded-for"] == "127.0.0.1"
    assert names["x-forwarded-proto"] == "http"
    assert names["x-forwarded-host"] == proxy.routes["api"]
    # the same body through the proxy and directly, for a binary payload
    async with client.get(proxy.url("api", "/bytes/300000")) as response:
        via_bytes = await response.read()
    async with client.get(upstream[1] + "/bytes/300000") as response:
        direct_bytes = await response.read()
    assert via_bytes == direct_bytes and len(via_bytes) == 300000
    del direct_url


async def test_hop_by_hop_headers_are_stripped_both_ways(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    headers = {"Connection": "keep-alive, X-Secret", "X-Secret": "s", "Keep-Alive": "timeout=5", "TE": "trailers",
               "Proxy-Authorization": "Basic x", "X-Kept": "yes"}
    async with client.get(proxy.url("api", "/echo"), headers=headers) as response:
        seen = {k.lower() for k, _ in (await response.json())["headers"]}
    assert "x-secret" not in seen and "keep-alive" not in seen and "te" not in seen and "proxy-authorization" not in seen
    assert "x-kept" in seen
    async with client.get(proxy.url("api", "/headers")) as response:
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        assert "X-Private" not in response.headers and "Keep-Alive" not in response.headers


async def test_head_204_304(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    async with client.head(proxy.url("api", "/bytes/1234")) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == "1234"
        assert await response.read() == b""
    async with client.get(proxy.url("api", "/status/204")) as response:
        assert response.status == 204 and await response.read() == b""
    async with client.get(proxy.url("api", "/status/304")) as response:
        assert response.status == 304 and response.headers["ETag"] == '"v1"'
    # keep-alive survived all of the above: one more request on the same pool works
    async with client.get(proxy.url("api", "/echo")) as response:
        assert response.status == 200


async def test_sse_chunk_reaches_client_before_upstream_sends_the_next(proxied: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    server, _ = upstream
    async with client.get(proxy.url("api", "/sse")) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert first == b"data: first\n\n"  # arrived while the upstream is still holding the rest
        server.released.set()
        rest = await asyncio.wait_for(response.content.read(), 5)
    assert rest == b"data: second\n\ndata: [DONE]\n\n"


def _vm_hwm_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def test_64_mib_bodies_stream_without_being_held(proxied: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    server, _ = upstream
    size = 64 * 1024 * 1024
    before = _vm_hwm_kib(proxy.process.pid)

    async def body() -> Any:
        block = b"z" * (1024 * 1024)
        for _ in range(64):
            yield block

    async with client.post(proxy.url("api", "/sink"), data=body(), headers={"Content-Length": str(size)}) as response:
        assert (await response.json())["received"] == size
    received = 0
    async with client.get(proxy.url("api", f"/bytes/{size}")) as response:
        async for chunk in response.content.iter_any():
            received += len(chunk)
    assert received == size
    growth_mib = (_vm_hwm_kib(proxy.process.pid) - before) / 1024
    assert growth_mib < 24, f"proxy peak memory grew {growth_mib:.1f} MiB for a 64 MiB body"


async def test_upstream_refused_is_502_and_timeout_is_504(proxy_factory: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = proxy_factory({"routes": [
        {"name": "dead", "upstream": dead},
        {"name": "slow", "upstream": upstream[1], "timeout": "300ms"},
    ]})
    async with client.get(proxy.url("dead", "/x")) as response:
        body = await response.json()
        assert response.status == 502
        assert body["route"] == "dead" and body["cause"] == "connect"
    async with client.get(proxy.url("slow", "/slow/2000")) as response:
        body = await response.json()
        assert response.status == 504
        assert body["route"] == "slow" and body["cause"] == "timeout"


async def test_upstream_dying_mid_stream_breaks_the_client_response(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    async with client.get(proxy.url("api", "/die")) as response:
        assert response.status == 200
        try:
            await asyncio.wait_for(response.read(), 5)
        except aiohttp.ClientPayloadError:
            pass  # the client sees a broken response, as it should
        else:
            raise AssertionError("a truncated upstream body was passed off as complete")


async def test_websocket_upgrade_gets_a_clear_501(proxied: Any) -> None:
    proxy = proxied()
    host, port = proxy.routes["api"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 501")
    assert b"WebSocket" in head


async def test_500_concurrent_connections_are_served(proxied: Any) -> None:
    proxy = proxied()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(i: int) -> int:
            async with session.get(proxy.url("api", f"/slow/200?i={i}")) as response:
                await response.read()
                return response.status

        statuses = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(500))), 60)
    assert statuses.count(200) == 500


async def test_curl_through_the_proxy(proxied: Any) -> None:
    proxy = proxied()
    result = await asyncio.to_thread(
        subprocess.run, ["curl", "-sS", "-i", "--data-binary", "hello", proxy.url("api", "/echo?via=curl")],
        capture_output=True, timeout=20,
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["body"] == "hello"


async def test_sigterm_drains_in_flight_requests_then_exits_0(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    request = asyncio.ensure_future(client.get(proxy.url("api", "/slow/800")))
    await asyncio.sleep(0.3)
    proxy.process.terminate()
    response = await asyncio.wait_for(request, 10)
    assert response.status == 200 and (await response.json())["slept_ms"] == 800
    assert await asyncio.to_thread(proxy.process.wait, 15) == 0
    await wait_for(lambda: proxy.process.poll() is not None)
