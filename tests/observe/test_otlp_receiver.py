"""The OTLP receiver against the real OpenTelemetry SDK and its OTLP/HTTP exporter."""

from __future__ import annotations

import asyncio
import gzip

import aiohttp
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.observe.otlp_receiver import PROTOBUF, OtlpReceiver


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
async def test_a_small_trace_arrives_whole(otlp: OtlpReceiver, compression: Compression) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "brownout-test"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp.traces_endpoint,
                                                                    compression=compression, timeout=5)))
    tracer = provider.get_tracer("brownout.tests", "1.0")
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span("POST /predict", kind=SpanKind.SERVER, attributes={
            "http.request.method": "POST", "url.path": "/predict", "server.port": 8080}) as server:
        with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT) as client:
            client.set_attribute("http.response.status_code", 503)
            client.add_event("brownout.fault.injected", {"brownout.fault.type": "error", "status": 503,
                                                         "delays_ms": [1.5, 2.5]})
            client.set_status(Status(StatusCode.ERROR, "injected"))
            inject(carrier)
    # The exporter is synchronous (a worker thread); flush off the loop so the receiver can answer.
    assert await asyncio.to_thread(provider.force_flush, 10_000)
    await asyncio.to_thread(provider.shutdown)

    spans = await otlp.wait_for_spans(2)
    assert otlp.exports >= 1 and otlp.rejected == []
    assert set(otlp.encodings) == {"gzip" if compression is Compression.Gzip else "identity"}
    by_kind = {s.kind: s for s in spans}
    srv, cli = by_kind["SERVER"], by_kind["CLIENT"]
    ctx = server.get_span_context()
    assert srv.trace_id == format(ctx.trace_id, "032x") and srv.span_id == format(ctx.span_id, "016x")
    assert srv.parent_span_id is None and cli.parent_span_id == srv.span_id and cli.trace_id == srv.trace_id
    assert srv.name == "POST /predict" and srv.attributes == {"http.request.method": "POST", "url.path": "/predict",
                                                              "server.port": 8080}
    assert srv.service_name == "brownout-test" and srv.scope == "brownout.tests"
    assert srv.start_unix_nano <= cli.start_unix_nano <= cli.end_unix_nano <= srv.end_unix_nano
    [event] = cli.events
    assert event.name == "brownout.fault.injected"
    assert event.attributes == {"brownout.fault.type": "error", "status": 503, "delays_ms": [1.5, 2.5]}
    assert cli.start_unix_nano <= event.time_unix_nano <= cli.end_unix_nano
    assert cli.status == "ERROR" and cli.status_message == "injected" and srv.status == "UNSET"
    # W3C traceparent: version-trace-span-flags, the client span as parent, sampled (bit 0;
    # newer SDKs also set bit 1, "random trace id", of Trace Context level 2).
    version, trace_id, parent_id, flags = carrier["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", cli.trace_id, cli.span_id) and int(flags, 16) & 1
    assert otlp.trace(srv.trace_id) == spans and otlp.named("POST") == [cli]


async def test_bad_exports_are_refused(otlp: OtlpReceiver) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(otlp.traces_endpoint, data=b"{}", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 415
        async with session.post(otlp.traces_endpoint, data=gzip.compress(b"\xff\xff\xff"),
                                headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}) as r:
            assert r.status == 400  # gzip, but no protobuf inside
        async with session.post(otlp.traces_endpoint, data=b"not gzip",
                                headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}) as r:
            assert r.status == 400
    assert len(otlp.rejected) == 3 and otlp.spans == [] and otlp.exports == 0
    with pytest.raises(AssertionError, match="spans not as expected"):
        await otlp.wait_for_spans(1, timeout_s=0.2)
