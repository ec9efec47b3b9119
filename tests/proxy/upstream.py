"""A real upstream for proxy tests: echo, streaming, status codes, stalls and mid-stream death."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

SCORE_BODY = {"transaction_id": "t-1", "score": 0.25, "fraud": False, "model_version": "v1"}


class Upstream:
    def __init__(self) -> None:
        self.released = asyncio.Event()  # lets a streaming test pace the upstream
        self.received_bytes = 0
        self.requests = 0
        self.last_headers: dict[str, list[str]] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 31)
        r = app.router
        r.add_route("*", "/echo{tail:.*}", self.echo)
        r.add_post("/sink", self.sink)
        r.add_get("/bytes/{n}", self.bytes)
        r.add_get("/sse", self.sse)
        r.add_get("/paced", self.paced)
        r.add_get("/status/{code}", self.status)
        r.add_get("/slow/{ms}", self.slow)
        r.add_get("/die", self.die)
        r.add_route("*", "/score", self.score)
        r.add_get("/headers", self.headers)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        self.last_headers = {k: request.headers.getall(k) for k in request.headers}
        return web.json_response({"method": request.method, "path_qs": request.path_qs, "body": body.decode("latin-1"),
                                  "headers": [[k, v] for k, v in request.headers.items()]})

    async def sink(self, request: web.Request) -> web.Response:
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
        self.received_bytes = total
        return web.json_response({"received": total})

    async def bytes(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = n
        await response.prepare(request)
        block = bytes(range(256)) * 256  # 64 KiB of a known pattern
        sent = 0
        while sent < n:
            piece = block[: min(len(block), n - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    async def sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await asyncio.wait_for(self.released.wait(), 10)  # the client must see "first" before this
        await response.write(b"data: second\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    async def paced(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for i in range(5):
            await response.write(f"chunk-{i}\n".encode())
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    async def status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        headers = {"ETag": '"v1"'} if code == 304 else {}
        return web.Response(status=code, headers=headers)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        return web.json_response({"slept_ms": int(request.match_info["ms"])})

    async def die(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 1_000_000
        await response.prepare(request)
        await response.write(b"x" * 1000)
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()  # the upstream dies mid-body
        return response

    async def score(self, request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(SCORE_BODY).encode(), content_type="application/json")

    async def headers(self, request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        response.headers["Connection"] = "keep-alive, X-Private"
        response.headers["X-Private"] = "hop"
        response.headers["Keep-Alive"] = "timeout=5"
        return response


def as_pairs(data: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in data["headers"]]
