"""A real OTLP/HTTP trace receiver for tests: ``POST /v1/traces`` with protobuf bodies.

It decodes ``ExportTraceServiceRequest`` (plain, gzip or deflate, as exporters send: aiohttp
undoes the Content-Encoding) with opentelemetry-proto and keeps every span for assertions::

    async with otlp_receiver() as otlp:        # or the ``otlp`` fixture
        ... # point an exporter (or the proxy) at otlp.traces_endpoint
        [span] = await otlp.wait_for_spans(1)
        assert span.kind == "SERVER" and span.attributes["http.request.method"] == "GET"
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = "application/x-protobuf"


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str              # 32 hex digits
    span_id: str               # 16 hex digits
    parent_span_id: str | None
    name: str
    kind: str                  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER, UNSPECIFIED
    start_unix_nano: int
    end_unix_nano: int
    attributes: dict[str, Any]
    events: tuple[SpanEvent, ...]
    status: str                # UNSET, OK, ERROR
    status_message: str
    service_name: str | None   # the resource's service.name
    scope: str                 # the instrumentation scope's name
    trace_state: str = ""
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id) of each link

    @classmethod
    def decode(cls, span: Span, resource: dict[str, Any], scope: str) -> ReceivedSpan:
        return cls(
            trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex() or None, name=span.name,
            kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
            start_unix_nano=span.start_time_unix_nano, end_unix_nano=span.end_time_unix_nano,
            attributes=attributes(span.attributes),
            events=tuple(SpanEvent(e.name, e.time_unix_nano, attributes(e.attributes)) for e in span.events),
            status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
            status_message=span.status.message, service_name=resource.get("service.name"), scope=scope,
            trace_state=span.trace_state,
            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
        )


@dataclass
class OtlpReceiver:
    url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    exports: int = 0                              # requests accepted
    rejected: list[str] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)  # Content-Encoding of each export
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def traces_endpoint(self) -> str:
        return self.url + "/v1/traces"

    def named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    async def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.spans):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"spans not as expected after {timeout_s}s: "
                                     f"{[(s.name, s.kind) for s in self.spans]}; rejected: {self.rejected}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    async def wait_for_spans(self, count: int, timeout_s: float = 10.0) -> list[ReceivedSpan]:
        await self.wait_for(lambda spans: len(spans) >= count, timeout_s)
        return list(self.spans)

    def _reject(self, status: int, why: str) -> web.Response:
        self.rejected.append(why)
        return web.Response(status=status, text=why)

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:  # OTLP/JSON is not needed by Brownout's exporter
            return self._reject(415, f"content type {request.content_type!r}; this receiver takes {PROTOBUF}")
        self.encodings.append(request.headers.get("Content-Encoding", "identity").lower())
        try:
            body = await request.read()  # aiohttp has undone gzip or deflate already
        except RequestPayloadError as exc:
            return self._reject(400, f"undecodable body: {exc}")
        try:
            export = ExportTraceServiceRequest.FromString(body)
        except DecodeError as exc:
            return self._reject(400, f"undecodable export: {exc}")
        for resource_spans in export.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(ReceivedSpan.decode(span, resource, scope_spans.scope.name))
        self.exports += 1
        self._arrived.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)


@asynccontextmanager
async def otlp_receiver(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    receiver.url = f"http://{host}:{runner.addresses[0][1]}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
async def otlp() -> AsyncIterator[OtlpReceiver]:
    """A running OTLP/HTTP receiver on a free loopback port."""
    async with otlp_receiver() as receiver:
        yield receiver
