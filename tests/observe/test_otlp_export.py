"""The export path alone: the bounded queue under a stuck collector, and the OTLP/HTTP sender's retries,
headers and compression against a real HTTP server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from proxy.tracing.otlp_http import OtlpHttpSender
from proxy.tracing.queue import ExportQueue
from proxy.tracing import records
from proxy.tracing.records import KIND_SERVER, SpanRecord, encode_export
from tests.conftest import serve_app


def test_a_stuck_export_drops_what_does_not_fit_and_shutdown_gives_up_in_time() -> None:
    release = threading.Event()
    exported: list[int] = []

    def export(batch: Sequence[int]) -> bool:
        release.wait(10)
        exported.extend(batch)
        return True

    queue: ExportQueue[int] = ExportQueue(export, stop=release.set, queue_size=4, delay_s=0.05)
    for item in range(4):
        queue.put(item)  # a full batch: the worker takes it and is stuck exporting it
    deadline = time.monotonic() + 5
    while queue.queued and time.monotonic() < deadline:
        time.sleep(0.01)
    for item in range(4, 11):
        queue.put(item)  # 4 fit, 3 are dropped
    assert queue.queued == 4 and queue.dropped == 3
    started = time.monotonic()
    queue.shutdown(0.3)  # the collector never answers: give up, and stop() releases the export
    assert time.monotonic() - started < 2 and queue.lost == 4
    deadline = time.monotonic() + 5
    while queue.exported < 4 and time.monotonic() < deadline:  # the released export finishes in its thread
        time.sleep(0.01)
    assert exported == [0, 1, 2, 3] and queue.exported == 4
    queue.put(99)
    assert queue.dropped == 4  # after shutdown, nothing is taken


async def test_the_sender_retries_a_503_and_sends_the_configured_headers_uncompressed() -> None:
    answers = [503, 200]
    seen: list[tuple[CIMultiDict[str], bytes]] = []

    async def traces(request: web.Request) -> web.Response:
        seen.append((CIMultiDict(request.headers), await request.read()))
        return web.Response(status=answers.pop(0), headers={"Retry-After": "0"})

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner, url = await serve_app(app)
    try:
        env = {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20s3cret,x-tenant=a",
               "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none"}
        sender = OtlpHttpSender(url + "/v1/traces", env, timeout_s=5)
        span = SpanRecord(7, 8, 0, "GET", KIND_SERVER, 1, {"a": "b"}, end_ns=2)
        body = encode_export([span], {"service.name": "t"}, "scope", "1")
        assert await asyncio.to_thread(sender.send, body) is True
        answers.append(400)
        assert await asyncio.to_thread(sender.send, body) is False  # a 400 is not retried
        sender.stop()
    finally:
        await runner.cleanup()
    assert len(seen) == 3
    headers, received = seen[1]
    assert headers["authorization"] == "Bearer s3cret" and headers["x-tenant"] == "a"
    assert headers["Content-Type"] == "application/x-protobuf" and "Content-Encoding" not in headers
    [resource_spans] = ExportTraceServiceRequest.FromString(received).resource_spans
    [decoded] = resource_spans.scope_spans[0].spans
    assert int.from_bytes(decoded.trace_id, "big") == 7 and decoded.name == "GET"


def test_encoded_attributes_keep_their_kind_when_equal_values_of_another_kind_came_first() -> None:
    """Encoded (key, string value) pairs are reused; 1, True, 1.0 and "1" under one key stay four kinds."""
    values: list[str | bool | int | float] = ["1", 1, True, 1.0, "1", 1, True, 1.0, "é" * 70]
    spans = [SpanRecord(7, i + 1, 0, "s", KIND_SERVER, 1, {"k": v, "other": "x"}, end_ns=2) for i, v in enumerate(values)]
    request = ExportTraceServiceRequest.FromString(encode_export(spans, {"service.name": "t"}, "scope", "1"))
    decoded = []
    for span in request.resource_spans[0].scope_spans[0].spans:
        [value] = [a.value for a in span.attributes if a.key == "k"]
        decoded.append(getattr(value, value.WhichOneof("value")))
        assert [(a.key, a.value.string_value) for a in span.attributes if a.key == "other"] == [("other", "x")]
    assert decoded == values and [type(v) for v in decoded] == [type(v) for v in values]


def test_values_that_never_repeat_do_not_fill_the_encoding_cache() -> None:
    """Request ids are new on every span: the cache keeps a few, and still learns a pair that repeats later."""
    spans = [SpanRecord(7, i + 1, 0, "s", KIND_SERVER, 1, {"brownout.request_id": f"unrepeated-{i}"}, end_ns=2)
             for i in range(records._CACHE_LIMIT + 100)]
    encode_export(spans, {"service.name": "t"}, "scope", "1")
    late = ("error.type", "a value first seen after thousands of request ids")
    request = ExportTraceServiceRequest.FromString(encode_export(
        [SpanRecord(7, 1, 0, "s", KIND_SERVER, 1, dict([late]), end_ns=2)], {"service.name": "t"}, "scope", "1"))
    assert [(a.key, a.value.string_value) for a in request.resource_spans[0].scope_spans[0].spans[0].attributes] == [late]
    assert late in records._pair_cache
    assert sum(key == "brownout.request_id" for key, _ in records._pair_cache) <= records._VALUES_PER_KEY
