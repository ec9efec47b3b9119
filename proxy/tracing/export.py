"""The SDK side of tracing, built only when tracing is on: a tracer whose spans go over OTLP/HTTP.

The sampling decision is made before any span is started (``proxy.tracing.context``), so the
provider's sampler is ALWAYS_ON: every span started here was meant to be recorded. A root
span takes the trace id the decision was made on (``PresetIds``), so the id a downstream
``TraceIdRatioBased`` sampler sees is the one that was judged. Spans are exported by a
``BoundedBatchProcessor`` (gzip unless OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION says otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

from faults.errors import InvalidInput
from proxy.tracing.context import new_span_id, new_trace_id
from proxy.tracing.settings import TracingSettings

try:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
except ImportError as missing:  # the optional extra is not installed
    _MISSING: ImportError | None = missing
    IdGenerator = object  # type: ignore[misc,assignment]
else:
    _MISSING = None

    from proxy.tracing.processor import BoundedBatchProcessor


class PresetIds(IdGenerator):  # type: ignore[misc,valid-type]
    """Random ids, except that the next root span takes the trace id already judged (``preset``)."""

    def __init__(self) -> None:
        self.next_trace_id = 0

    def generate_span_id(self) -> int:
        return new_span_id()

    def generate_trace_id(self) -> int:
        trace_id, self.next_trace_id = self.next_trace_id, 0
        return trace_id or new_trace_id()

    def is_trace_id_random(self) -> bool:
        return True


def _version() -> str:
    try:
        return metadata.version("brownout")
    except metadata.PackageNotFoundError:
        return "unknown"


class TraceExport:
    """One tracer provider, its exporter and processor; ``close`` flushes within a bound."""

    def __init__(self, settings: TracingSettings, env: Mapping[str, str], scope: str = "brownout") -> None:
        if _MISSING is not None:
            raise InvalidInput(f"tracing needs the 'tracing' extra: pip install 'brownout[tracing]' ({_MISSING})",
                               "tracing")
        self.settings = settings
        compression = None if (env.get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") or env.get("OTEL_EXPORTER_OTLP_COMPRESSION")) \
            else Compression.Gzip
        exporter = OTLPSpanExporter(endpoint=settings.endpoint, timeout=settings.export_timeout_s,
                                    compression=compression)
        self.processor = BoundedBatchProcessor(exporter, queue_size=settings.queue_size, delay_s=settings.batch_delay_s)
        self.ids = PresetIds()
        self.provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.create({"service.name": settings.service_name}),
                                       id_generator=self.ids, shutdown_on_exit=False)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer(scope, _version())

    def root(self, trace_id: int) -> None:
        """The next span started without a parent belongs to ``trace_id``."""
        self.ids.next_trace_id = trace_id

    def close(self, timeout_s: float = 5.0) -> None:
        """Export what is queued within ``timeout_s``; then stop (blocking: call it off the event loop)."""
        self.processor.shutdown(timeout_s)


def remote_parent(trace_id: int, span_id: int, flags: int, tracestate: bytes | None = None) -> Any:
    """The context of a span in another process, to start a child span under (explicitly, never 'current')."""
    state = TraceState.from_header([tracestate.decode("latin-1")]) if tracestate else None
    span = NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 0xFF),
                                        trace_state=state))
    return trace.set_span_in_context(span)


def child_of(span: Any) -> Any:
    """The context to start a child of ``span`` in."""
    return trace.set_span_in_context(span)
