"""Stream faults through the real proxy against SSE upstreams framed every way HTTP allows.

An upstream may send an event stream with a Content-Length (small LLM answers often are),
chunked, or close-delimited. Pacing and TTFT faults must work on all three (a Content-Length
must not make the proxy buffer the stream), and a fault that changes the events must give
the client a correctly framed answer. Times are judged over many events with generous bounds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

EVENTS = 20


def _chunk(i: int) -> bytes:
    finish = "stop" if i == EVENTS - 1 else None
    doc = {"id": "c1", "object": "chat.completion.chunk",
           "choices": [{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": finish}]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


STREAM = [_chunk(i) for i in range(EVENTS)] + [b"data: [DONE]\n\n"]
BODY = b"".join(STREAM)


def _framed(framing: str) -> bytes:
    """The whole answer, at once: the upstream is fast, only a fault spreads the events out."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    if framing == "content-length":
        return head + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY
    if framing == "chunked":
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in STREAM) + b"0\r\n\r\n"
    return head + b"Connection: close\r\n\r\n" + BODY  # close-delimited


@pytest.fixture(params=["content-length", "chunked", "close-delimited"])
async def sse_proxy(request: Any, proxy_factory: Any) -> AsyncIterator[Any]:
    framing: str = request.param

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(_framed(framing))
                await writer.drain()
                if framing == "close-delimited":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = proxy_factory({"routes": [{"name": "llm", "upstream": f"http://127.0.0.1:{port}"}]})
    proxy.framing = framing
    yield proxy
    server.close()


async def _events(session: aiohttp.ClientSession, url: str) -> tuple[list[float], list[bytes], Any]:
    """Each event as the client parsed it, with its arrival time (seconds after the request)."""
    started = time.perf_counter()
    times: list[float] = []
    events: list[bytes] = []
    buffer = b""
    async with session.get(url) as response:
        assert response.status == 200
        async for piece in response.content.iter_any():  # raises ClientPayloadError on bad framing
            buffer += piece
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                events.append(event + b"\n\n")
                times.append(time.perf_counter() - started)
        headers = response.headers
    assert buffer == b""
    return times, events, headers


async def _with_fault(session: aiohttp.ClientSession, proxy: Any, params: dict[str, Any]) -> tuple[list[float], list[bytes], Any]:
    async with session.post(proxy.admin + "/faults", json={"type": "stream", "route": "llm", "params": params, "id": "s"}) as r:
        assert r.status == 201, await r.text()
    try:
        return await _events(session, proxy.url("llm", "/v1/chat/completions"))
    finally:
        async with session.delete(proxy.admin + "/faults/s") as r:
            assert r.status == 200


async def test_ttft_delay_and_pacing_work_on_every_framing(sse_proxy: Any) -> None:
    url = sse_proxy.url("llm", "/v1/chat/completions")
    async with aiohttp.ClientSession() as session:
        plain = [await _events(session, url) for _ in range(3)]
        assert all(events == STREAM for _, events, _ in plain)
        ttft_plain = statistics.median(times[0] for times, _, _ in plain)

        times, events, headers = await _with_fault(session, sse_proxy, {"first_event_delay_ms": 400})
        assert events == STREAM  # the same bytes, only later
        assert times[0] >= 0.35 and times[0] - ttft_plain >= 0.3, (times[0], ttft_plain)
        if sse_proxy.framing == "content-length":
            assert headers["Content-Length"] == str(len(BODY))  # timing only: upstream's length stays

        times, events, headers = await _with_fault(session, sse_proxy, {"event_interval_ms": 40})
        assert events == STREAM
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        # Spread out, not all at once: 20 gaps of ~40 ms (the proxy's sleep is never shorter).
        assert times[-1] - times[0] >= 0.6, times
        assert sum(g >= 0.025 for g in gaps) >= 15, gaps
        if sse_proxy.framing == "content-length":
            assert headers["Content-Length"] == str(len(BODY))


@pytest.mark.parametrize("params", [{"cut_after_events": 5, "keep_done": True}, {"drop_finish_reason": True,
                                                                                   "event_interval_ms": 10}])
async def test_a_stream_fault_that_changes_the_events_is_framed_correctly(sse_proxy: Any, params: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        times, events, headers = await _with_fault(session, sse_proxy, params)
    assert "Content-Length" not in headers and headers.get("Transfer-Encoding") == "chunked"
    docs = [json.loads(e.removeprefix(b"data: ")) for e in events if e != b"data: [DONE]\n\n"]
    assert events[-1] == b"data: [DONE]\n\n"
    if "cut_after_events" in params:
        assert [d["choices"][0]["delta"]["content"] for d in docs] == [f"t{i}" for i in range(5)]
    else:
        assert len(docs) == EVENTS and all(d["choices"][0]["finish_reason"] is None for d in docs)
        assert times[-1] - times[0] >= 0.15  # still streamed event by event, not buffered


def _http10_get(address: str, path: str) -> bytes:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_http10_client_gets_a_changed_stream_close_delimited(sse_proxy: Any) -> None:
    async with aiohttp.ClientSession() as session, session.post(sse_proxy.admin + "/faults", json={
            "type": "stream", "route": "llm", "params": {"cut_after_events": 3}}) as r:
        assert r.status == 201
    raw = await asyncio.to_thread(_http10_get, sse_proxy.routes["llm"], "/v1/chat/completions")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert b"connection: close" in lines
    assert not any(line.startswith((b"content-length", b"transfer-encoding")) for line in lines)
    assert body == b"".join(STREAM[:3])  # the cut stream, ended by the close
