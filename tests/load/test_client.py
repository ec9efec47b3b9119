"""The raw HTTP/1.1 client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import json
import socket

from brownout.load.client import HttpClient, parse_target
from brownout.load.payloads import encode_request


def _client(url: str, **kwargs: object) -> tuple[HttpClient, bytes]:
    target = parse_target(url)
    client = HttpClient(target, lambda *a: None, **kwargs)  # type: ignore[arg-type]
    return client, encode_request("GET", target.path, target, (), None)


async def test_content_length_and_chunked_bodies(server: str) -> None:
    client, wire = _client(f"{server}/ok/client", keep_bodies=True)
    status, error, nbytes, body = await client.request(wire)
    assert (status, error, json.loads(body or b"")) == (200, None, {"ok": True}) and nbytes > len(body or b"")
    client2, chunked = _client(f"{server}/chunked", keep_bodies=True)
    status, _, _, body = await client2.request(chunked)
    assert status == 200 and json.loads(body or b"") == {"parts": ["a", "b"]}
    await client.close()
    await client2.close()


async def test_keep_alive_reuses_one_connection_and_connection_close_is_honoured(server: str) -> None:
    client, wire = _client(f"{server}/ok/reuse", connections=1)
    for _ in range(5):
        assert (await client.request(wire))[0] == 200
    assert len(client._idle) == 1  # one socket served all five
    closing, close_wire = _client(f"{server}/close", connections=1, keep_bodies=True)
    for _ in range(3):
        status, error, _, body = await closing.request(close_wire)
        assert (status, error, body) == (200, None, b"bye")
    assert not closing._idle
    await client.close()
    await closing.close()


async def test_timeout_and_connect_errors(server: str) -> None:
    client, wire = _client(f"{server}/hang", request_timeout=0.3)
    status, error, _, _ = await client.request(wire)
    assert (status, error) == (0, "timeout")
    await client.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # bound, not listening: connection refused
        refused, wire = _client(f"http://127.0.0.1:{dead}/")
        assert (await refused.request(wire))[:2] == (0, "connect")
        await refused.close()


async def test_a_stale_keep_alive_socket_is_retried_once_on_a_new_one() -> None:
    """A server that answers one request per connection and closes on the next, unanswered."""
    import asyncio

    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the reuse: close without a word
        writer.close()

    srv = await asyncio.start_server(one_per_connection, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client, wire = _client(f"http://127.0.0.1:{port}/", connections=1, keep_bodies=True)
    results = [await client.request(wire) for _ in range(3)]
    assert results == [(200, None, len(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), b"ok")] * 3
    await client.close()
    srv.close()
    await srv.wait_closed()
