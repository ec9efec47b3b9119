"""What the recording tests share: an upstream with JSON, SSE, binary and gzip answers, and admin calls."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.recording import RecordLine, parse_line
from tests.conftest import ProxyProcess, serve_app

SECRETS = {
    "authorization": "Bearer SECRET-TOKEN-1",
    "cookie": "sid=SECRET-COOKIE-2",
    "x-api-key": "SECRET-KEY-3",
    "x-session": "SECRET-SESSION-4",
    "email": "jane.SECRET-MAIL-5@example.com",
    "card": "4111222233334444",
    "set-cookie": "sid=SECRET-SET-6; HttpOnly",
}
REDACT = {"headers": ["X-Session"], "json_paths": ["$.customer.email"], "patterns": [r"\b\d{16}\b"]}


async def predict(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"score": round(0.01 * body.get("n", 0), 4), "customer": body.get("customer"),
                              "request_id": request.headers.get("X-Request-Id", "none")},
                             headers={"Set-Cookie": SECRETS["set-cookie"], "X-Model": "m1"})


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for i in range(3):
        await response.write(f'data: {{"token": "t{i}", "i": {i}}}\n\n'.encode())
        await asyncio.sleep(0.01)
    await response.write(f"event: note\nid: 7\ndata: card {SECRETS['card']} seen\n\n".encode())
    await response.write(b": keep-alive\n\ndata: [DONE]\n\n")
    await response.write_eof()
    return response


async def binary(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)) * 4, content_type="application/octet-stream")


async def gzipped(request: web.Request) -> web.Response:
    doc = json.dumps({"score": 0.5, "note": "compressed"}).encode()
    return web.Response(body=gzip.compress(doc), headers={"Content-Type": "application/json",
                                                          "Content-Encoding": "gzip"})


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0.05")))
    return web.json_response({"score": 0.25})


def upstream_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/predict", predict)
    app.router.add_get("/stream", stream)
    app.router.add_get("/bin", binary)
    app.router.add_get("/gz", gzipped)
    app.router.add_get("/slow", slow)
    return app


@pytest.fixture
async def upstream_url() -> AsyncIterator[str]:
    runner, url = await serve_app(upstream_app())
    yield url
    await runner.cleanup()


async def admin_call(proxy: ProxyProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=proxy.headers()) as session:
        async with session.request(method, proxy.admin + path, json=body) as response:
            text = await response.text()
            if response.content_type == "application/json":
                return response.status, json.loads(text)
            return response.status, text


async def recording_lines(proxy: ProxyProcess, rid: str) -> list[RecordLine]:
    status, text = await admin_call(proxy, "GET", f"/recordings/{rid}/data")
    assert status == 200, text
    return [parse_line(line) for line in text.splitlines() if line.strip()]


async def wait_state(proxy: ProxyProcess, rid: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, rec = await admin_call(proxy, "GET", f"/recordings/{rid}")
        assert status == 200, rec
        if rec["state"] == state or time.monotonic() > deadline:
            return rec
        await asyncio.sleep(0.05)


async def metric(proxy: ProxyProcess, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there is none)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.admin + "/metrics") as response:
            text = await response.text()
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        metric_name, _, label_text = sample.partition("{")
        if metric_name != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file())
