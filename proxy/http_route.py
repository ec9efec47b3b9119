"""An ``http`` route: a streaming reverse proxy with fault injection.

One pooled ``ClientSession`` per upstream; bodies stream both ways, chunk by chunk;
hop-by-hop headers are dropped; with no fault selected the bytes pass through unchanged.
The fault decision is one cheap check per request: an empty tuple means no work at all.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import os
import re
import socket
import struct
import termios
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from faults import Exchange, Proceed, Reset, Respond
from faults.errors import FaultAborted
from proxy.config import RouteConfig
from proxy.injection import Injection
from proxy.leases import ActiveFault, FaultStore, path_filter
from proxy.metrics import ProxyMetrics

log = structlog.get_logger("brownout.proxy")

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
_NOT_READ: Any = object()
_COALESCE_MAX = 16 * 1024  # body bytes sent with the head in one write; more would be an extra copy
_LINGER_RST = struct.pack("ii", 1, 0)
_READ_BODY = "brownout.read_body"
_MEASURE_MAX = 8 * 1024 * 1024  # rewritten bodies up to this size get an exact Content-Length


class UpstreamFailed(Exception):
    """The upstream could not give us a response head (→ 502/504)."""

    def __init__(self, status: int, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.cause, self.detail = status, cause, detail


def _strip_hop_by_hop(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    out = CIMultiDict(headers)  # one C-level copy, then drop the few hop-by-hop names in place
    drop = HOP_BY_HOP
    if "Connection" in headers:
        drop = drop | {h.strip().lower() for v in headers.getall("Connection") for h in v.split(",")}
    for name in drop:
        if name in out:
            del out[name]
    return out


def abort_connection(request: web.BaseRequest, *, rst: bool) -> None:
    """Close the client connection without a response: RST (SO_LINGER 0) or a plain FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if rst and sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        except OSError:
            pass
    transport.abort() if rst else transport.close()


async def reset_after_flush(request: web.BaseRequest, wait: float = 0.2) -> None:
    """RST the client after what was already written has been delivered (ACKed).

    An RST makes the kernel drop unsent data, so "N bytes then a reset" must wait until the
    send queue is empty (SIOCOUTQ), or ``wait`` seconds, before resetting.
    """
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    deadline = time.monotonic() + wait
    while sock is not None and transport is not None and time.monotonic() < deadline:
        if transport.get_write_buffer_size() == 0:
            try:
                unsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
            except OSError:
                break
            if unsent == 0:
                break
        await asyncio.sleep(0.002)
    abort_connection(request, rst=True)


class HttpRoute:
    def __init__(self, config: RouteConfig, store: FaultStore, metrics: ProxyMetrics, *,
                 fault_header: bool = False, max_body: int = 64 * 1024 * 1024) -> None:
        self.config = config
        self.name = config.name
        self._store = store
        self._metrics = metrics
        self._fault_header = fault_header
        self._max_body = max_body
        self._base = config.upstream
        self._timeout = aiohttp.ClientTimeout(total=None, connect=config.connect_timeout, sock_read=config.timeout)
        self._session: aiohttp.ClientSession | None = None
        self._server: web.Server | None = None
        self._listener: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self._id_prefix = f"{os.getpid():x}-{config.name}"
        self._status_counters: dict[int, Any] = {}
        self._duration = metrics.request_duration.labels(config.name)
        self._faults: tuple[ActiveFault, ...] = ()
        self._needs_body = False
        self._paths: re.Pattern[str] | None = None
        self.bound: tuple[str, int] | None = None

    # -- lifecycle

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        self._server = web.Server(self.handle, handler_cancellation=True, access_log=None,
                                  max_field_size=16384, keepalive_timeout=75)
        address = self.config.address
        self._listener = await asyncio.get_running_loop().create_server(
            self._server, address.host, address.port, reuse_address=True, backlog=1024)
        self.bound = self._listener.sockets[0].getsockname()[:2]

    def stop_accepting(self) -> None:
        if self._listener is not None:
            self._listener.close()

    async def drain(self, grace: float) -> None:
        """Wait for in-flight requests up to ``grace`` seconds, then close everything."""
        if self._server is not None:
            await self._server.shutdown(grace)
        if self._session is not None:
            await self._session.close()

    # -- the request path

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        response: web.StreamResponse | None = None
        status = 0
        try:
            faults = self._store.for_route(self.name)
            injection = await self._select(request, faults) if faults else None
            response = await self._serve(request, injection)
            status = response.status
            return response
        finally:
            self._duration.observe(time.perf_counter() - started)
            self._count(status)

    async def _select(self, request: web.BaseRequest, faults: tuple[ActiveFault, ...]) -> Injection | None:
        if faults is not self._faults:  # a new tuple on every change (copy on write): recheck
            self._faults, self._paths = faults, path_filter(faults)
            self._needs_body = any(f.match.needs_body for f in faults)
        if self._paths is not None and not self._paths.match(request.path):
            return None  # no fault's path glob fits: nothing to decide, no counter moves
        json_body = await self._read_json(request) if self._needs_body else _NOT_READ
        method, path, headers = request.method, request.path, request.headers
        selected: tuple[ActiveFault, ...] = ()
        for f in faults:  # a plain loop: nothing is allocated when no fault applies
            if f.decide(method, path, headers, json_body):
                selected += (f,)
        if not selected:
            return None
        ex = Exchange(
            route=self.name, request_id=request.headers.get("X-Request-Id") or f"{self._id_prefix}-{next(self._ids)}",
            method=request.method, path=request.path, query=request.query_string, client=request.remote or "",
            rng=selected[0].rng, now=time.monotonic, sleep=selected[0].sleep,
            request_headers=self._upstream_headers(request), request_json=json_body,
        )
        return Injection(selected, ex, self._metrics)

    async def _read_json(self, request: web.BaseRequest) -> Any:
        """Body predicates need the request body; read it (bounded) and keep it for upstream."""
        raw = await request.content.read(self._max_body + 1)
        if len(raw) > self._max_body:
            raise web.HTTPRequestEntityTooLarge(max_size=self._max_body, actual_size=len(raw))
        request[_READ_BODY] = raw  # aiohttp's per-request storage: replayed upstream by _request_body
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return _NOT_READ

    async def _serve(self, request: web.BaseRequest, injection: Injection | None) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return self._error(501, "websocket", "WebSocket upgrades are not proxied by Brownout")
        try:
            if injection is not None:
                for hook in ("on_connection", "on_request"):
                    outcome = await injection.run(hook)
                    if not isinstance(outcome, Proceed):
                        return await self._answer(request, outcome, injection)
            return await self._forward(request, injection)
        except FaultAborted:
            abort_connection(request, rst=True)
            return web.Response(status=499)

    async def _answer(self, request: web.BaseRequest, outcome: Reset | Respond, injection: Injection | None) -> web.StreamResponse:
        if isinstance(outcome, Reset):
            abort_connection(request, rst=not outcome.graceful)
            return web.Response(status=499)  # never sent: the connection is gone
        response = web.Response(status=outcome.status, body=outcome.body, headers=CIMultiDict(outcome.headers))
        self._mark(response, injection)
        return response

    async def _forward(self, request: web.BaseRequest, injection: Injection | None) -> web.StreamResponse:
        try:
            upstream = await self._open_upstream(request, injection)
        except UpstreamFailed as failure:
            self._metrics.upstream_errors.labels(self.name, failure.cause).inc()
            return self._error(failure.status, failure.cause, failure.detail)
        try:
            headers = _strip_hop_by_hop(upstream.headers)
            if injection is not None:
                injection.ex.status, injection.ex.response_headers = upstream.status, headers
                outcome = await injection.run("on_response")
                if not isinstance(outcome, Proceed):
                    return await self._answer(request, outcome, injection)
                status = injection.ex.status or upstream.status
            else:
                status = upstream.status
            response = web.StreamResponse(status=status, reason=upstream.reason if status == upstream.status else None)
            response.headers.extend(headers)
            self._mark(response, injection)
            await self._stream_body(request, response, upstream, injection)
            return response
        finally:
            upstream.release()

    async def _open_upstream(self, request: web.BaseRequest, injection: Injection | None) -> aiohttp.ClientResponse:
        assert self._session is not None
        headers = injection.ex.request_headers if injection is not None else self._upstream_headers(request)
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._request_body(request, injection, headers)
        try:
            return await self._session.request(
                request.method, URL(self._base + request.raw_path, encoded=True), headers=headers,
                data=body, allow_redirects=False, compress=None,
            )
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamFailed(502, "connect", f"upstream {self._base} refused or unreachable: {exc.os_error}") from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamFailed(504, "timeout", f"upstream {self._base} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailed(502, "protocol", f"upstream {self._base} failed: {exc.__class__.__name__}: {exc}") from None

    def _request_body(self, request: web.BaseRequest, injection: Injection | None, headers: CIMultiDict[str]) -> Any:
        read: bytes | None = request.get(_READ_BODY)
        if read is None and not request.body_exists:
            return None
        source: Any = request.content if read is None else read
        if injection is not None and injection.uses("wrap_request_body"):
            return injection.wrap("wrap_request_body", _chunks_of(source))
        return source

    async def _stream_body(self, request: web.BaseRequest, response: web.StreamResponse,
                           upstream: aiohttp.ClientResponse, injection: Injection | None) -> None:
        chunks = _pieces(upstream.content)
        first = b""
        if injection is not None and injection.uses("wrap_response_body"):
            chunks = injection.wrap("wrap_response_body", chunks)
            if response.content_length is None and _measurable(upstream, request):
                # A fault dropped the Content-Length of a body of known size: it rewrites the
                # body. Measure what it produces, so the client gets an exact Content-Length.
                try:
                    first = b"".join([chunk async for chunk in chunks])
                except FaultAborted:
                    abort_connection(request, rst=True)
                    return
                response.content_length = len(first)
                chunks = _nothing()
        else:
            try:
                first = upstream.content.read_nowait(_COALESCE_MAX)  # came with the head: often the whole body
            except aiohttp.ClientError:
                pass  # raised again by the loop below, after the head
        # aiohttp (>= 3.12) holds the head back when asked, to send it with the first body bytes:
        # one write instead of three for a small response. With nothing buffered, send it now.
        response._send_headers_immediately = not first
        declared = response.content_length
        sent = len(first)
        await response.prepare(request)
        if first and upstream.content.at_eof() and (declared is None or sent == declared):
            await response.write_eof(first)  # head, body (and the last chunk) in one write
            return
        try:
            if first:
                await response.write(first)
            async for chunk in chunks:
                if chunk:
                    sent += len(chunk)
                    await response.write(chunk)
        except FaultAborted:
            await reset_after_flush(request)
            return
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The upstream died mid-stream: break the client's response rather than hang or lie.
            self._metrics.upstream_errors.labels(self.name, "midstream").inc()
            log.warning("upstream_broke_midstream", route=self.name, error=repr(exc))
            abort_connection(request, rst=False)
            return
        if declared is not None and sent < declared and request.method != "HEAD":
            abort_connection(request, rst=False)  # a short read, as a truncating fault asked
            return
        await response.write_eof()

    def _upstream_headers(self, request: web.BaseRequest) -> CIMultiDict[str]:
        headers = _strip_hop_by_hop(request.headers)
        host = headers.popall("Host", [""])[0]
        client = request.remote or ""
        prior = headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
        headers.setdefault("X-Forwarded-Proto", request.scheme)
        if host:
            headers.setdefault("X-Forwarded-Host", host)
        headers.popall("Expect", None)
        return headers

    def _mark(self, response: web.StreamResponse, injection: Injection | None) -> None:
        if self._fault_header and injection is not None:
            response.headers["x-brownout-fault"] = injection.ids

    def _error(self, status: int, cause: str, detail: str) -> web.Response:
        body = {"error": detail, "route": self.name, "cause": cause}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    def _count(self, status: int) -> None:
        counter = self._status_counters.get(status)
        if counter is None:
            counter = self._status_counters[status] = self._metrics.requests.labels(self.name, str(status))
        counter.inc()


async def _pieces(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The body as it arrives, piece by piece: unlike ``iter_any`` it never joins buffered pieces
    (a copy of every byte of a large body)."""
    while True:
        piece, _ = await content.readchunk()
        if piece:
            yield piece
        elif content.at_eof():  # (not iter_chunks: it spins on aiohttp's shared empty payload)
            return


def _measurable(upstream: aiohttp.ClientResponse, request: web.BaseRequest) -> bool:
    length = upstream.content_length
    return length is not None and length <= _MEASURE_MAX and request.method != "HEAD"


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _chunks_of(source: Any) -> AsyncIterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    async for chunk in source.iter_any():
        yield chunk
