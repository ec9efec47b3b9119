"""What an OpenTelemetry span costs in this process, next to a sampling decision made before the SDK.

    .venv/bin/python benchmarks/otel_span_cost.py [--spans 20000]

Prints microseconds per operation (the best of 5 timed runs each, wall time on one thread),
and the process CPU per span with the real OTLP/HTTP exporter sending to a local receiver
thread (serialisation and export included). Needs the ``tracing`` extra.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ATTRS = {"http.request.method": "POST", "url.path": "/predict", "url.scheme": "http",
         "server.address": "127.0.0.1", "server.port": 8080, "http.route": "model-api"}


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def best_us(fn: Callable[[], object], n: int) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return min(runs)


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """Version 00 only: (trace id, parent span id, flags), or None when malformed."""
    if len(value) != 55 or value[2] != "-" or value[35] != "-" or value[52] != "-" or value[:2] != "00":
        return None
    try:
        trace_id, span_id, flags = int(value[3:35], 16), int(value[36:52], 16), int(value[53:], 16)
    except ValueError:
        return None
    return (trace_id, span_id, flags) if trace_id and span_id else None


def provider(ratio: float, exporter: SpanExporter) -> TracerProvider:
    p = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    p.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536, schedule_delay_millis=200))
    return p


def request_spans(tracer: trace.Tracer, propagator: TraceContextTextMapPropagator,
                  traceparent: str = TRACEPARENT) -> None:
    """What the proxy would do per sampled request: continue the client's trace, a server span, a
    client span for the upstream call with a fault event, traceparent injected upstream."""
    parent = propagator.extract({"traceparent": traceparent})
    server = tracer.start_span("POST", parent, kind=SpanKind.SERVER, attributes=ATTRS)
    server_ctx = trace.set_span_in_context(server, parent)
    client = tracer.start_span("POST", server_ctx, kind=SpanKind.CLIENT,
                               attributes={"server.address": "127.0.0.1", "server.port": 9000})
    client.add_event("brownout.fault", {"brownout.fault.id": "f1", "brownout.fault.type": "latency",
                                        "delay_ms": 200.0})
    headers: dict[str, str] = {}
    propagator.inject(headers, trace.set_span_in_context(client, server_ctx))
    client.set_attribute("http.response.status_code", 200)
    client.end()
    server.set_attribute("http.response.status_code", 200)
    server.end()


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def exported_cpu_per_request(spans: int) -> float:
    """Process CPU per request (2 spans) with the real OTLP/HTTP exporter, export included
    (the sink's threads are in this process too; answering 200 to a POST is a small share)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    p = provider(1.0, OTLPSpanExporter(endpoint=endpoint))
    tracer, propagator = p.get_tracer("bench"), TraceContextTextMapPropagator()
    started = time.process_time()
    for _ in range(spans // 2):
        request_spans(tracer, propagator)
    p.force_flush(30_000)
    cpu = time.process_time() - started
    p.shutdown()
    server.shutdown()
    return cpu / (spans // 2) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=20000)
    n = ap.parse_args().spans
    propagator = TraceContextTextMapPropagator()
    counter = iter(range(10**12))
    threshold = int(0.01 * (1 << 64))
    rows: list[tuple[str, float]] = [
        ("empty loop", best_us(lambda: None, n)),
        ("sampling decision: a counter (every 100th)", best_us(lambda: next(counter) % 100 == 0, n)),
        ("parse traceparent by hand", best_us(lambda: parse_traceparent(TRACEPARENT), n)),
        ("sampling decision from the trace id (low 64 bits < ratio * 2^64)",
         best_us(lambda: (int(TRACEPARENT[19:35], 16) < threshold), n)),
        ("W3C propagator extract (SDK)", best_us(lambda: propagator.extract({"traceparent": TRACEPARENT}), n)),
    ]
    on = provider(1.0, Drop())
    tracer = on.get_tracer("bench")
    rows.append(("one server span, 6 attributes, start+end (sampled, BSP, exporter dropped)",
                 best_us(lambda: tracer.start_span("POST", kind=SpanKind.SERVER, attributes=ATTRS).end(), n)))
    rows.append(("a request: extract, server + client span, event, inject (sampled, BSP)",
                 best_us(lambda: request_spans(tracer, propagator), n // 2)))
    off = provider(0.0, Drop())
    unsampled = off.get_tracer("bench")
    not_sampled = TRACEPARENT[:-2] + "00"  # the client did not sample, and neither do we
    rows.append(("the same request through the SDK, not sampled (ratio 0, parent not sampled)",
                 best_us(lambda: request_spans(unsampled, propagator, not_sampled), n // 2)))
    ctx = trace.set_span_in_context(NonRecordingSpan(SpanContext(1, 1, False, TraceFlags(0))))
    rows.append(("context attach/detach (what a 'current span' costs)",
                 best_us(lambda: context.detach(context.attach(ctx)), n)))
    on.shutdown()
    off.shutdown()
    rows.append(("process CPU per request (2 spans) with the OTLP/HTTP exporter, export included",
                 exported_cpu_per_request(n)))
    width = max(len(name) for name, _ in rows)
    for name, us in rows:
        print(f"{name:<{width}}  {us:8.2f} us")


if __name__ == "__main__":
    main()
