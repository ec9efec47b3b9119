"""The proxy's spans: one SERVER span per sampled exchange, one CLIENT span per upstream call.

``follows`` decides on plain integers (``proxy.tracing.context``), before the route builds
anything for the exchange; ``exchange_started`` then opens a tap for a sampled one. A client's
``traceparent`` (found in the proxy's header pass) decides by its sampled flag; a new trace is
sampled by a countdown to the next one (``Sampler.gap``), which the route keeps inline when
tracing is its only observer (``ExchangeObserver.counts_down``): an unsampled exchange without a
``traceparent`` costs one decrement, and one with it a parse; its ``traceparent`` (if any)
reaches upstream untouched.

A sampled exchange: the SERVER span continues the client's ``traceparent`` (its ``tracestate``
kept) or starts a trace; the CLIENT span starts as the request goes upstream and ends when
upstream answers (or fails); the upstream gets a ``traceparent`` naming the CLIENT span, in
place of the client's, so the user's own spans nest under it (``tracestate`` passes as sent).
An exchange a fault answered has no CLIENT span. Each fault that acted (reported something)
adds ``brownout.fault.*`` attributes to the SERVER span and a ``brownout.fault.injected``
event at the moment it acted, carrying what it reported (``delay_ms``, ``status``,
``bytes_cut``...). A connection-phase fault acts before there is any request: it gets a short
INTERNAL span of its own, ``brownout.connection``, a trace of its own sampled at the ratio.
Spans are plain records (``records``) handed to the export queue when they end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    new_span_id,
    parse_traceparent,
    span_hex,
    trace_hex,
)
from proxy.tracing.exporter import SpanExport
from proxy.tracing.records import KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, SpanRecord, span_attributes

log = structlog.get_logger("brownout.tracing")

_ABORTED = 499  # the exchange ended without an answer: a fault reset it, or the client left
EVENT = "brownout.fault.injected"


class TracingObserver(ExchangeObserver):
    """Traces one http route's exchanges into ``export``."""

    counts_down = True

    def __init__(self, route: RouteConfig, export: SpanExport, sampler: Sampler) -> None:
        self.route = route.name
        self.export = export
        self.sampler = sampler
        listen = parse_host_port(route.listen)
        self.listen = (listen.host, listen.port)
        upstream = urlsplit(route.upstream)
        self.upstream_base = route.upstream.rstrip("/")
        # What every span of this route says alike, encoded once.
        self.server_fixed = {version: span_attributes({"url.scheme": "http", "network.protocol.version": version,
                                                       "brownout.route": route.name}) for version in ("1.0", "1.1")}
        self.client_fixed = span_attributes({
            "server.address": upstream.hostname or "", "network.protocol.version": "1.1", "brownout.route": route.name,
            "server.port": upstream.port or (443 if upstream.scheme == "https" else 80)})
        self._decided: TraceParent | int = 0  # what ``follows`` decided, for ``exchange_started``
        self._client_sent = False  # and whether the client sent a traceparent (valid or not) to replace
        self.until_sampled = sampler.gap()  # new traces to go until the next sampled one (``counts_down``)

    def follows(self, headers: Sequence[tuple[bytes, bytes]], traceparent: bytes) -> bool:
        """The sampling decision, kept for ``exchange_started`` (called at once, for the same exchange).
        On every request's path: a client's ``traceparent`` decides (parent-based); a new trace
        counts down to the next sampled one (``Sampler.gap``): one decrement, no draw."""
        self._client_sent = bool(traceparent)
        if traceparent:
            parent = parse_traceparent(traceparent)
            if parent is not None:
                self._decided = parent
                return self.sampler.keeps(parent)
            # invalid: a new trace, as if absent
        self.until_sampled -= 1
        if self.until_sampled:
            return False
        self.until_sampled = self.sampler.gap()
        self._decided = self.sampler.sampled_trace_id()
        return True

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        decided, self._decided = self._decided, 0
        if isinstance(decided, int):
            return ExchangeTrace(self, start, decided, None, "", self._client_sent) if decided else None
        state = header_value(start.headers, b"tracestate")
        return ExchangeTrace(self, start, decided.trace_id, decided, state.decode("latin-1") if state else "", True)

    def fault_effect(self, effect: FaultEffect) -> None:
        if effect.hook is Hook.ON_CONNECTION:
            self._connection_span(effect)

    def _connection_span(self, effect: FaultEffect) -> None:
        trace_id = self.sampler.new_trace()
        if not trace_id:
            return
        now = time.time_ns()
        started = now - int(effect.at_s * 1e9)
        span = SpanRecord(trace_id, new_span_id(), 0, "brownout.connection", KIND_INTERNAL, started, {
            "brownout.route": self.route, "brownout.request_id": effect.request_id, **fault_attributes((effect,))},
            end_ns=now)
        add_fault_event(span, effect, started)
        self.export.put(span)


class ExchangeTrace(ExchangeTap):
    """One sampled exchange's spans."""

    __slots__ = ("observer", "server", "client", "method", "target", "replaces")

    def __init__(self, observer: TracingObserver, start: ExchangeStart, trace_id: int, parent: TraceParent | None,
                 tracestate: str, replaces: bool) -> None:
        self.observer = observer
        self.replaces = replaces  # the client sent a traceparent: strip it from what goes upstream
        self.method, self.target = start.method, start.target
        self.client: SpanRecord | None = None
        host, port = _server_address(header_value(start.headers, b"host"), observer.listen)
        attributes: dict[str, str | bool | int | float] = {
            "http.request.method": start.method, "url.path": start.target.partition("?")[0], "server.address": host,
            "server.port": port, "client.address": start.client, "brownout.request_id": start.request_id}
        agent = header_value(start.headers, b"user-agent")
        if agent is not None:
            attributes["user_agent.original"] = agent.decode("latin-1")
        self.server = SpanRecord(trace_id, new_span_id(), parent.span_id if parent else 0, start.method, KIND_SERVER,
                                 int(start.started_at * 1e9), attributes,
                                 fixed=observer.server_fixed.get(start.http_version, observer.server_fixed["1.1"]),
                                 parent_remote=parent is not None, trace_state=tracestate)

    def upstream_request(self, headers: list[tuple[bytes, bytes]]) -> None:
        server = self.server
        self.client = span = SpanRecord(server.trace_id, new_span_id(), server.span_id, self.method, KIND_CLIENT,
                                        time.time_ns(), {"http.request.method": self.method,
                                                         "url.full": self.observer.upstream_base + self.target},
                                        fixed=self.observer.client_fixed, trace_state=server.trace_state)
        if self.replaces:  # the client's own (valid or not) gives way to ours
            headers[:] = [h for h in headers if h[0].lower() != b"traceparent"]
        headers.append((b"traceparent", format_traceparent(span.trace_id, span.span_id)))

    def upstream_answered(self, status: int | None, cause: str | None) -> None:
        span, self.client = self.client, None
        if span is None:
            return
        span.end_ns = time.time_ns()
        if status is None:
            span.fail(cause or "failed", f"upstream: {cause}")
        else:
            span.attributes["http.response.status_code"] = status
            if status >= 400:
                span.fail(str(status))
        self.observer.export.put(span)

    def ended(self, end: ExchangeEnd) -> None:
        if self.client is not None:  # the exchange ended while upstream had not answered
            self.upstream_answered(None, "cancelled")
        server = self.server
        server.end_ns = time.time_ns()
        if end.status == _ABORTED:
            server.fail("aborted", "no response: reset by a fault, or the client left")
        else:
            server.attributes["http.response.status_code"] = end.status
            if end.status >= 500:
                server.fail(str(end.status))
        acted = tuple(e for e in end.effects if e.hook is not None)
        if acted:
            server.attributes.update(fault_attributes(acted))
            for effect in acted:
                add_fault_event(server, effect, server.start_ns)
            trace_id, span_id = trace_hex(server.trace_id), span_hex(server.span_id)
            log.info("fault_traced", route=end.route, request_id=end.request_id, trace_id=trace_id, span_id=span_id,
                     faults=[e.fault_id for e in acted], trace_url=self.observer.export.settings.link(trace_id, span_id))
        self.observer.export.put(server)


def fault_attributes(effects: tuple[FaultEffect, ...]) -> dict[str, str]:
    """``brownout.fault.{id,type,route}``: one fault's values, or several joined by commas, in order."""
    return {"brownout.fault.id": ",".join(e.fault_id for e in effects),
            "brownout.fault.type": ",".join(e.kind for e in effects),
            "brownout.fault.route": ",".join(dict.fromkeys(e.route for e in effects))}


def add_fault_event(span: SpanRecord, effect: FaultEffect, start_ns: int) -> None:
    attributes: dict[str, str | bool | int | float] = {
        "brownout.fault.id": effect.fault_id, "brownout.fault.type": effect.kind, "brownout.fault.route": effect.route,
        "brownout.fault.hook": str(effect.hook)}
    for key, value in effect.details.items():
        attributes[f"brownout.fault.{key}"] = value
    span.event(EVENT, attributes, start_ns + int(effect.at_s * 1e9))


def _server_address(host_header: bytes | None, listen: tuple[str, int]) -> tuple[str, int]:
    """The name and port the client addressed (its Host header), else where the route listens."""
    if host_header:
        text = host_header.decode("latin-1").strip()
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit() and not host.endswith(":"):
            return host.strip("[]"), int(port)
        return text.strip("[]"), 80
    return listen
