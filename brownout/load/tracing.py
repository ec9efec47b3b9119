"""Sampled load requests carry a ``traceparent`` and become CLIENT spans of the load generator.

The decision is made per request on a drawn trace id (``proxy.tracing.context.Sampler``: its
low 64 bits against ``ratio * 2**64``), so an unsampled request costs one random draw and is
sent as it was encoded: no header, no span. A sampled one gets a ``traceparent`` spliced
after its request line (its bytes copied once) naming a CLIENT span that starts as the
request is handed to the client and ends with its answer (or its error), linked to the run's
experiment span. Downstream (the proxy, the demo's services) continues that trace.
"""

from __future__ import annotations

import time

from brownout.load.client import Job, Target
from proxy.tracing.context import Sampler, format_traceparent, new_span_id
from proxy.tracing.exporter import SpanExport
from proxy.tracing.records import KIND_CLIENT, SpanRecord, span_attributes


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
