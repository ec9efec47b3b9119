"""Small real servers the load tests aim at, run as a subprocess: ``python servers.py PORT``.

Separate process so the server's CPU never skews the generator's timing. Endpoints:
  /ok/{tag}                 200 {"ok": true}; arrival times kept per tag (GET /hits/{tag})
  /stall?start=T&end=T      held until monotonic time ``end`` when it arrives in [start, end)
  /capacity/{n}             a FIFO server of exactly n requests/s (virtual queue, no jitter drift)
  /delay/{seconds}          answers after a fixed delay
  /hang                     never answers (60 s)
  /predict, /buggy          validate {"amount": finite number, "merchant": string}: 400 bad JSON,
                            422 bad fields, 413 over 1 MiB (aiohttp); /buggy 500s on a missing field
  /chunked, /close          chunked body; Connection: close
CLOCK_MONOTONIC is system-wide, so times here match ``time.monotonic()`` in the tests.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections import defaultdict

from aiohttp import web

hits: dict[str, list[float]] = defaultdict(list)
next_free: dict[float, float] = {}


async def ok(request: web.Request) -> web.Response:
    hits[request.match_info["tag"]].append(time.monotonic())
    await request.read()
    return web.json_response({"ok": True})


async def get_hits(request: web.Request) -> web.Response:
    return web.json_response(hits.get(request.match_info["tag"], []))


async def stall(request: web.Request) -> web.Response:
    start, end = float(request.query["start"]), float(request.query["end"])
    now = time.monotonic()
    if start <= now < end:
        await asyncio.sleep(end - now)
    return web.json_response({"ok": True})


async def capacity(request: web.Request) -> web.Response:
    n = float(request.match_info["n"])
    now = time.monotonic()
    done = max(now, next_free.get(n, 0.0)) + 1.0 / n
    next_free[n] = done
    await asyncio.sleep(done - now)
    return web.json_response({"ok": True})


async def delay(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.match_info["seconds"]))
    return web.json_response({"ok": True})


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(60)
    return web.json_response({"ok": True})


async def predict(request: web.Request) -> web.Response:
    buggy = request.path == "/buggy"
    raw = await request.read()  # over client_max_size: aiohttp answers 413
    try:
        body = json.loads(raw, parse_constant=lambda c: math.nan)
    except ValueError:
        return web.json_response({"error": "malformed JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "expected an object"}, status=422)
    if buggy and "merchant" not in body:
        raise RuntimeError("KeyError: merchant")  # the bug an edge case should find: a 500
    amount, merchant = body.get("amount"), body.get("merchant")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
        return web.json_response({"error": "amount must be a finite number"}, status=422)
    if not isinstance(merchant, str):
        return web.json_response({"error": "merchant must be a string"}, status=422)
    return web.json_response({"score": 0.5})


async def chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for part in (b'{"parts": [', b'"a", ', b'"b"]}'):
        await resp.write(part)
    await resp.write_eof()
    return resp


async def close(request: web.Request) -> web.Response:
    return web.Response(body=b"bye", headers={"Connection": "close"})


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app.router.add_route("*", "/ok/{tag}", ok)
    app.router.add_get("/hits/{tag}", get_hits)
    app.router.add_route("*", "/stall", stall)
    app.router.add_route("*", "/capacity/{n}", capacity)
    app.router.add_route("*", "/delay/{seconds}", delay)
    app.router.add_route("*", "/hang", hang)
    app.router.add_post("/predict", predict)
    app.router.add_post("/buggy", predict)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/close", close)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, shutdown_timeout=0.2,
                handle_signals=True)


if __name__ == "__main__":
    main()
