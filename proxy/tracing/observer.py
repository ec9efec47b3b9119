"""The proxy's spans: one SERVER span per sampled exchange, one CLIENT span per upstream call.

``follows`` decides on plain integers (``proxy.tracing.context``), before the route builds
anything for the exchange; ``exchange_started`` then opens a tap for a sampled one. An
unsampled exchange costs a header scan and, without a ``traceparent``, one random draw. Its ``traceparent`` (if any) reaches upstream untouched.

A sampled exchange: the SERVER span continues the client's ``traceparent`` (its ``tracestate``
kept) or starts a trace; the CLIENT span starts as the request goes upstream and ends when
upstream answers (or fails); the upstream gets a ``traceparent`` naming the CLIENT span, in
place of the client's, so the user's own spans nest under it (``tracestate`` passes as sent).
An exchange a fault answered has no CLIENT span. Each fault that acted (reported something)
adds ``brownout.fault.*`` attributes to the SERVER span and a ``brownout.fault.injected``
event at the moment it acted, carrying what it reported (``delay_ms``, ``status``,
``bytes_cut``...). A connection-phase fault acts before there is any request: it gets a short
INTERNAL span of its own, ``brownout.connection``, a trace of its own sampled at the ratio.
Contexts are passed explicitly; nothing is made "current".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog

from faults import Hook
from proxy.addresses import parse_host_port
from proxy.config import RouteConfig
from proxy.observers import ExchangeEnd, ExchangeObserver, ExchangeStart, ExchangeTap, FaultEffect
from proxy.tracing.context import (
    Sampler,
    TraceParent,
    format_traceparent,
    header_value,
    parse_traceparent,
    span_hex,
    trace_hex,
)
from proxy.tracing.export import TraceExport, child_of, remote_parent

log = structlog.get_logger("brownout.tracing")

try:
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # never used then: a TraceExport cannot be built without the SDK
    pass

_ABORTED = 499  # the exchange ended without an answer: a fault reset it, or the client left
EVENT = "brownout.fault.injected"


class TracingObserver(ExchangeObserver):
    """Traces one http route's exchanges through ``export``'s tracer."""

    def __init__(self, route: RouteConfig, export: TraceExport, sampler: Sampler) -> None:
        self.route = route.name
        self.export = export
        self.tracer = export.tracer
        self.sampler = sampler
        listen = parse_host_port(route.listen)
        self.listen = (listen.host, listen.port)
        upstream = urlsplit(route.upstream)
        self.upstream_base = route.upstream.rstrip("/")
        self.upstream_host = upstream.hostname or ""
        self.upstream_port = upstream.port or (443 if upstream.scheme == "https" else 80)
        self._decided: TraceParent | int = 0  # what ``follows`` decided, for ``exchange_started``

    def follows(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        """The sampling decision, kept for ``exchange_started`` (called at once, for the same exchange)."""
        value = header_value(headers, b"traceparent")
        parent = parse_traceparent(value) if value is not None else None
        if parent is None:  # absent or invalid: a new trace, if the ratio says so
            trace_id = self.sampler.new_trace()
            self._decided = trace_id
            return trace_id != 0
        self._decided = parent
        return self.sampler.keeps(parent)

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        decided, self._decided = self._decided, 0
        if isinstance(decided, int):
            if not decided:
                return None
            self.export.root(decided)
            return ExchangeTrace(self, start, None)
        tracestate = header_value(start.headers, b"tracestate")
        return ExchangeTrace(self, start, remote_parent(decided.trace_id, decided.span_id, decided.flags, tracestate))

    def fault_effect(self, effect: FaultEffect) -> None:
        if effect.hook is Hook.ON_CONNECTION:
            self._connection_span(effect)

    def _connection_span(self, effect: FaultEffect) -> None:
        trace_id = self.sampler.new_trace()
        if not trace_id:
            return
        self.export.root(trace_id)
        now = time.time_ns()
        started = now - int(effect.at_s * 1e9)
        span = self.tracer.start_span("brownout.connection", kind=SpanKind.INTERNAL, start_time=started, attributes={
            "brownout.route": self.route, "brownout.request_id": effect.request_id, **fault_attributes((effect,))})
        add_fault_event(span, effect, started)
        span.end(end_time=now)


class ExchangeTrace(ExchangeTap):
    """One sampled exchange's spans."""

    def __init__(self, observer: TracingObserver, start: ExchangeStart, parent: Any) -> None:
        self.observer = observer
        self.start_ns = int(start.started_at * 1e9)
        self.method = start.method
        self.target = start.target
        self.client_span: Any = None
        host, port = _server_address(header_value(start.headers, b"host"), observer.listen)
        attributes: dict[str, Any] = {
            "http.request.method": start.method, "url.path": start.target.partition("?")[0], "url.scheme": "http",
            "server.address": host, "server.port": port, "client.address": start.client,
            "network.protocol.version": start.http_version, "brownout.route": observer.route,
            "brownout.request_id": start.request_id,
        }
        agent = header_value(start.headers, b"user-agent")
        if agent is not None:
            attributes["user_agent.original"] = agent.decode("latin-1")
        self.server = observer.tracer.start_span(start.method, parent, kind=SpanKind.SERVER, attributes=attributes,
                                                 start_time=self.start_ns)

    def upstream_request(self, headers: list[tuple[bytes, bytes]]) -> None:
        observer = self.observer
        self.client_span = span = observer.tracer.start_span(self.method, child_of(self.server), kind=SpanKind.CLIENT,
                                                             attributes={
            "http.request.method": self.method, "url.full": observer.upstream_base + self.target,
            "server.address": observer.upstream_host, "server.port": observer.upstream_port,
            "network.protocol.version": "1.1", "brownout.route": observer.route,
        })
        context = span.get_span_context()
        headers[:] = [h for h in headers if h[0].lower() != b"traceparent"]
        headers.append((b"traceparent", format_traceparent(context.trace_id, context.span_id)))

    def upstream_answered(self, status: int | None, cause: str | None) -> None:
        span, self.client_span = self.client_span, None
        if span is None:
            return
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
        else:
            span.set_attribute("error.type", cause or "failed")
            span.set_status(Status(StatusCode.ERROR, f"upstream: {cause}"))
        span.end()

    def ended(self, end: ExchangeEnd) -> None:
        if self.client_span is not None:  # the exchange ended while upstream had not answered
            self.upstream_answered(None, "cancelled")
        server = self.server
        if end.status == _ABORTED:
            server.set_attribute("error.type", "aborted")
            server.set_status(Status(StatusCode.ERROR, "no response: reset by a fault, or the client left"))
        else:
            server.set_attribute("http.response.status_code", end.status)
            if end.status >= 500:
                server.set_attribute("error.type", str(end.status))
                server.set_status(Status(StatusCode.ERROR))
        acted = tuple(e for e in end.effects if e.hook is not None)
        if acted:
            server.set_attributes(fault_attributes(acted))
            for effect in acted:
                add_fault_event(server, effect, self.start_ns)
            context = server.get_span_context()
            trace_id = trace_hex(context.trace_id)
            log.info("fault_traced", route=end.route, request_id=end.request_id, trace_id=trace_id,
                     span_id=span_hex(context.span_id), faults=[e.fault_id for e in acted],
                     trace_url=self.observer.export.settings.link(trace_id, span_hex(context.span_id)))
        server.end()


def fault_attributes(effects: tuple[FaultEffect, ...]) -> dict[str, str]:
    """``brownout.fault.{id,type,route}``: one fault's values, or several joined by commas, in order."""
    return {"brownout.fault.id": ",".join(e.fault_id for e in effects),
            "brownout.fault.type": ",".join(e.kind for e in effects),
            "brownout.fault.route": ",".join(dict.fromkeys(e.route for e in effects))}


def add_fault_event(span: Any, effect: FaultEffect, start_ns: int) -> None:
    attributes: dict[str, Any] = {"brownout.fault.id": effect.fault_id, "brownout.fault.type": effect.kind,
                                  "brownout.fault.route": effect.route, "brownout.fault.hook": str(effect.hook)}
    for key, value in effect.details.items():
        attributes[f"brownout.fault.{key}"] = value
    span.add_event(EVENT, attributes, timestamp=start_ns + int(effect.at_s * 1e9))


def _server_address(host_header: bytes | None, listen: tuple[str, int]) -> tuple[str, int]:
    """The name and port the client addressed (its Host header), else where the route listens."""
    if host_header:
        text = host_header.decode("latin-1").strip()
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit() and not host.endswith(":"):
            return host.strip("[]"), int(port)
        return text.strip("[]"), 80
    return listen
