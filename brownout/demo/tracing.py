"""Trace context through the demo's services, so one trace crosses client → proxy → model API →
proxy → feature store and GPU worker.

Configured by the standard OTEL_* variables only (``proxy.tracing.settings``; each service has
its own default service name, ``OTEL_SERVICE_NAME`` overrides them all). Off when no endpoint
is set: then nothing is added to the apps at all.

Server side, an aiohttp middleware continues an incoming ``traceparent`` (or starts a trace
at the sampling ratio) with a SERVER span around the handler, kept in a context variable for
the request's task. Client side, an ``aiohttp.TraceConfig`` on the service's session starts a
CLIENT span under that SERVER span for each outgoing call and sends its ``traceparent``. A
request that is not sampled gets no span and its outgoing calls no header.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from types import SimpleNamespace

import aiohttp
from aiohttp import web

from proxy.tracing.context import Sampler, format_traceparent, new_span_id, parse_traceparent
from proxy.tracing.records import KIND_CLIENT, KIND_SERVER, SpanRecord
from proxy.tracing.settings import resolve_tracing

_SERVER_SPAN: ContextVar[SpanRecord | None] = ContextVar("brownout_demo_server_span", default=None)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install_tracing(app: web.Application, service: str,
                    env: Mapping[str, str] | None = None) -> list[aiohttp.TraceConfig]:
    """Trace ``app``'s requests when the OTEL variables say so; returns the trace configs for the
    service's outgoing ``aiohttp.ClientSession`` (empty when tracing is off)."""
    env = os.environ if env is None else env
    settings = resolve_tracing(None, env, default_service=service)
    if settings is None:
        return []
    from proxy.tracing.exporter import SpanExport

    export = SpanExport(settings, env, scope="brownout.demo")
    sampler = Sampler(settings.sample_ratio, settings.follow_parent)

    def answered(span: SpanRecord, status: int) -> None:
        span.attributes["http.response.status_code"] = status
        if status >= 500:
            span.fail(str(status))

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        value = request.headers.get("traceparent")
        parent = parse_traceparent(value) if value else None
        if parent is None:
            trace_id = sampler.new_trace()
            if not trace_id:
                return await handler(request)
        elif sampler.keeps(parent):
            trace_id = parent.trace_id
        else:
            return await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        host, _, port = (request.host or "").rpartition(":")
        span = SpanRecord(trace_id, new_span_id(), parent.span_id if parent else 0, f"{request.method} {route}",
                          KIND_SERVER, time.time_ns(), {
            "http.request.method": request.method, "url.path": request.path, "url.scheme": request.scheme,
            "http.route": route, "client.address": request.remote or "", "server.address": host or request.host,
        }, parent_remote=parent is not None, trace_state=request.headers.get("tracestate", ""))
        if port.isdigit():
            span.attributes["server.port"] = int(port)
        token = _SERVER_SPAN.set(span)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            answered(span, exc.status)
            raise
        except BaseException as exc:
            span.fail(type(exc).__name__, str(exc))
            raise
        else:
            answered(span, response.status)
            return response
        finally:
            _SERVER_SPAN.reset(token)
            span.end_ns = time.time_ns()
            export.put(span)

    async def on_start(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestStartParams) -> None:
        parent = _SERVER_SPAN.get()
        if parent is None:
            return
        url = params.url
        span = SpanRecord(parent.trace_id, new_span_id(), parent.span_id, params.method, KIND_CLIENT, time.time_ns(), {
            "http.request.method": params.method, "url.full": str(url), "server.address": url.host or "",
            "server.port": url.port or 80}, trace_state=parent.trace_state)
        params.headers["traceparent"] = format_traceparent(span.trace_id, span.span_id).decode()
        ctx.span = span

    async def on_end(session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        span = getattr(ctx, "span", None)
        if span is not None:
            span.end_ns = time.time_ns()
            span.attributes["http.response.status_code"] = params.response.status
            if params.response.status >= 400:
                span.fail(str(params.response.status))
            export.put(span)

    async def on_exception(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                           params: aiohttp.TraceRequestExceptionParams) -> None:
        span = getattr(ctx, "span", None)
        if span is not None:
            span.end_ns = time.time_ns()
            span.fail(type(params.exception).__name__, str(params.exception))
            export.put(span)

    async def flush(app: web.Application) -> None:
        await asyncio.to_thread(export.close, 5.0)

    app.middlewares.append(traced)
    app.on_cleanup.append(flush)
    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    return [config]
