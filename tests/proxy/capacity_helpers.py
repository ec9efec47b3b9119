"""Capacity tests' helpers: a model server in its own thread, the proxy's counters, the proxy itself.

The model server: slow answers, usage, long SSE streams, and counts.

Every path answers (OpenAI chat/completions, Anthropic messages, Triton infer, anything else);
``?ms=N`` holds the answer N ms, ``?total_tokens=N`` sets the usage. A JSON body with
``"stream": true`` gets ``?events=N`` SSE chunks ``?interval_ms`` apart, and a final usage chunk
when ``stream_options.include_usage`` is set. It counts the requests it saw and the most it
held at once, so tests compare the proxy's counters with what really reached the model.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ProxyProcess, free_port, start_proxy


class CapacityUpstream:
    def __init__(self) -> None:
        self.arrivals = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", self.handle)
        return application

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            raw = await request.read()
            body: Any = json.loads(raw) if raw else None
            await asyncio.sleep(float(request.query.get("ms", "0")) / 1000.0)
            total = int(request.query.get("total_tokens", "50"))
            if isinstance(body, dict) and body.get("stream"):
                return await self._stream(request, body, total)
            return web.json_response({"id": "x-1", "choices": [{"index": 0, "message": {"content": "ok"},
                                                                "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 5, "completion_tokens": total - 5, "total_tokens": total}})
        finally:
            self.in_flight -= 1

    async def _stream(self, request: web.Request, body: dict[str, Any], total: int) -> web.StreamResponse:
        events = int(request.query.get("events", "10"))
        interval = float(request.query.get("interval_ms", "0")) / 1000.0
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        for i in range(events):
            if i and interval:
                await asyncio.sleep(interval)
            chunk = {"id": "c-1", "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": None}]}
            if (body.get("stream_options") or {}).get("include_usage"):
                chunk["usage"] = None
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"id": "c-1", "object": "chat.completion.chunk", "choices": [],
                     "usage": {"prompt_tokens": 5, "completion_tokens": total - 5, "total_tokens": total}}
            await response.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


@contextmanager
def serving(port: int) -> Iterator[CapacityUpstream]:
    """Run the upstream on 127.0.0.1:``port`` in a background thread (its timing never waits on the test's loop)."""
    upstream = CapacityUpstream()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(upstream.app(), access_log=None, shutdown_timeout=0.5)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="capacity-upstream", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("capacity upstream did not start")
    upstream.url = f"http://127.0.0.1:{port}"
    try:
        yield upstream
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def scrape(http: aiohttp.ClientSession, proxy: ProxyProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the proxy's /metrics: (name, sorted labels) → value."""
    async with http.get(proxy.admin + "/metrics") as response:
        text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def arrivals(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], route: str) -> float:
    """``brownout_requests_total`` summed over statuses: every request that arrived on ``route``."""
    return sum(v for (name, labels), v in samples.items()
               if name == "brownout_requests_total" and dict(labels).get("route") == route)


@contextmanager
def capacity_proxy(tmp_path: Any, **config: Any) -> Iterator[tuple[ProxyProcess, CapacityUpstream]]:
    """A capacity upstream and a ``brownout proxy`` with one route ``gpu`` in front of it."""
    with serving(free_port()) as upstream:
        proxy = start_proxy(tmp_path, {"routes": [{"name": "gpu", "kind": "http", "upstream": upstream.url}], **config})
        try:
            yield proxy, upstream
        finally:
            proxy.stop()


async def add_fault(http: aiohttp.ClientSession, proxy: ProxyProcess, kind: str, params: dict[str, Any],
                    **extra: Any) -> dict[str, Any]:
    async with http.post(proxy.admin + "/faults", json={"type": kind, "route": "gpu", "params": params, **extra}) as r:
        body = await r.json()
        assert r.status == 201, body
        return body


Capacity = tuple[ProxyProcess, CapacityUpstream]


Capacity = tuple[ProxyProcess, CapacityUpstream]
