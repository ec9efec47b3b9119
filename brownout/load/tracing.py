"""Sampled load requests carry a ``traceparent`` and become CLIENT spans of the load generator.

The decision is made per request on a drawn trace id (``proxy.tracing.context.Sampler``: its
low 64 bits against ``ratio * 2**64``), so an unsampled request costs one random draw and is
sent as it was encoded: no header, no span. A sampled one gets a ``traceparent`` spliced
after its request line (its bytes copied once) naming a CLIENT span that starts as the
request is handed to the client and ends with its answer (or its error), linked to the run's
experiment span (in a run). Downstream (the proxy, the demo's services) continues that trace.

``load_settings``: a run's and ``brownout load``'s settings, sampling at ``DEFAULT_RATIO``
unless told otherwise; ``standalone``: ``brownout load``'s tracing, on when the OTEL_*
variables give an endpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from brownout.load.client import Job, Target, parse_target
from proxy.tracing.context import Sampler, format_traceparent, new_span_id
from proxy.tracing.exporter import SpanExport
from proxy.tracing.records import KIND_CLIENT, SpanRecord, span_attributes
from proxy.tracing.settings import TracingSettings, resolve_tracing

if TYPE_CHECKING:
    from proxy.config import TracingConfig

# The share of load requests traced when neither a ``sample_ratio`` nor OTEL_TRACES_SAMPLER gives
# one: a span per request would cost the generator more than the request.
DEFAULT_RATIO = 0.01
FLUSH_TIMEOUT_S = 5.0


def load_settings(block: TracingConfig | None, env: Mapping[str, str], default_service: str) -> TracingSettings | None:
    """``resolve_tracing``'s settings, at ``DEFAULT_RATIO`` when nothing gives a ratio; None when off.
    A bad variable raises ``InvalidInput``."""
    settings = resolve_tracing(block, env, default_service=default_service)
    if settings is not None and (block is None or block.sample_ratio is None) \
            and not env.get("OTEL_TRACES_SAMPLER", "").strip():
        settings = dataclasses.replace(settings, sample_ratio=DEFAULT_RATIO, follow_parent=True)
    return settings


@asynccontextmanager
async def standalone(target_url: str, env: Mapping[str, str]) -> AsyncIterator[LoadTracing | None]:
    """``brownout load``'s tracing (service ``brownout-load``): None when the variables give no
    endpoint; its spans are flushed (at most ``FLUSH_TIMEOUT_S``) when the load is over."""
    settings = load_settings(None, env, default_service="brownout-load")
    if settings is None:
        yield None
        return
    export = SpanExport(settings, env, scope="brownout.load")
    try:
        yield LoadTracing(export, Sampler(settings.sample_ratio), parse_target(target_url))
    finally:
        await asyncio.to_thread(export.close, FLUSH_TIMEOUT_S)


class LoadTracing:
    """``stamp`` each job as it is submitted; ``finish`` it when its answer is in."""

    def __init__(self, export: SpanExport, sampler: Sampler, target: Target,
                 link: tuple[int, int] | None = None) -> None:
        self._export = export
        self._sampler = sampler
        self._links = (link,) if link is not None else ()
        self._fixed = span_attributes({"server.address": target.host, "server.port": target.port,
                                       "network.protocol.version": "1.1"})
        self._base = f"{target.scheme}://{target.host_header}"
        self.sampled = 0

    def stamp(self, job: Job) -> None:
        """Decide; a sampled job gets its span and a traceparent in its bytes."""
        trace_id = self._sampler.new_trace()
        if not trace_id:
            return
        wire = job.wire
        line_end = wire.find(b"\r\n")
        method_bytes, _, rest = wire[:line_end].partition(b" ")
        method = method_bytes.decode("latin-1")
        attributes: dict[str, str | bool | int | float] = {
            "http.request.method": method, "url.full": self._base + rest.rpartition(b" ")[0].decode("latin-1")}
        if isinstance(job.tag, str):
            attributes["brownout.edge_case"] = job.tag
        span = SpanRecord(trace_id, new_span_id(), 0, method, KIND_CLIENT, time.time_ns(), attributes,
                          fixed=self._fixed, links=self._links)
        job.wire = wire[:line_end + 2] + b"traceparent: " + format_traceparent(trace_id, span.span_id) + b"\r\n" \
            + wire[line_end + 2:]
        job.trace = span
        self.sampled += 1

    def finish(self, job: Job, status: int, error: str | None) -> None:
        span, job.trace = job.trace, None
        if not isinstance(span, SpanRecord):
            return
        span.end_ns = time.time_ns()
        if status:
            span.attributes["http.response.status_code"] = status
        if error is not None or not status:
            span.fail(error or "no response", error or "no response")
        elif status >= 400:
            span.fail(str(status))
        self._export.put(span)
