"""An ``http`` route: a streaming reverse proxy with fault injection.

Below aiohttp's Request/Response objects, where the profile said the time went (DESIGN §7):
client connections are ``ClientConnection`` protocols, upstream ones come from an
``UpstreamPool``, both parsed by httptools, and bytes go to the transports as they are. With no
fault selected a request costs one header pass each way and usually one write each way; the
fault decision is one cheap check (an empty tuple means no work at all). Faults see the request
through ``Exchange`` at the three phases of the contract, as before.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from faults import Exchange, Proceed, Reset, Respond
from faults.errors import FaultAborted
from proxy import h1
from proxy.config import RouteConfig
from proxy.forward_headers import Outgoing, response_headers, upstream_request_headers
from proxy.h1_server import ClientBodyBroken, ClientConnection, IncomingRequest
from proxy.injection import Injection
from proxy.leases import ActiveFault, FaultStore, path_filter
from proxy.metrics import ProxyMetrics
from proxy.upstream_pool import (
    Body,
    UpstreamFailed,
    UpstreamPool,
    UpstreamProtocolError,
    UpstreamResponse,
)

log = structlog.get_logger("brownout.proxy")

_NOT_READ: Any = object()
_MEASURE_MAX = 8 * 1024 * 1024  # rewritten bodies up to this size get an exact Content-Length
_CLIENT_IDLE_S = 75.0  # keep-alive client connections idle this long are closed
_UPSTREAM_IDLE_S = 15.0  # pooled upstream connections likewise
_RESET = 499  # counted status of a request answered by closing the connection


class HttpRoute:
    def __init__(self, config: RouteConfig, store: FaultStore, metrics: ProxyMetrics, *,
                 fault_header: bool = False, max_body: int = 64 * 1024 * 1024) -> None:
        self.config = config
        self.name = config.name
        self._store = store
        self._metrics = metrics
        self._fault_header = fault_header
        self._max_body = max_body
        self._pool = UpstreamPool(config.upstream, connect_timeout=config.connect_timeout, read_timeout=config.timeout)
        self._connections: set[ClientConnection] = set()
        self._listener: asyncio.Server | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._id_prefix = f"{os.getpid():x}-{config.name}"
        self._requests = metrics.route_requests(config.name)
        self._faults: tuple[ActiveFault, ...] = ()
        self._needs_body = False
        self._paths: re.Pattern[str] | None = None
        self.bound: tuple[str, int] | None = None

    # -- lifecycle

    async def start(self) -> None:
        address = self.config.address
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: ClientConnection(self.handle, self._connections), address.host, address.port,
            reuse_address=True, backlog=1024)
        self.bound = self._listener.sockets[0].getsockname()[:2]
        self._housekeeping = asyncio.create_task(self._close_idle_connections())

    def stop_accepting(self) -> None:
        if self._listener is not None:
            self._listener.close()

    async def drain(self, grace: float) -> None:
        """Finish in-flight requests for up to ``grace`` seconds, then close every connection."""
        for connection in list(self._connections):
            connection.closing = True
            if not connection.busy:
                connection.close()
        deadline = time.monotonic() + grace
        while any(c.busy for c in self._connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self._connections):
            connection.abort(rst=False)
        self._pool.close()
        if self._housekeeping is not None:
            self._housekeeping.cancel()

    async def _close_idle_connections(self) -> None:
        while True:
            await asyncio.sleep(5)
            cutoff = time.monotonic() - _CLIENT_IDLE_S
            for connection in [c for c in self._connections if not c.busy and c.idle_since < cutoff]:
                connection.close()
            self._pool.close_idle(_UPSTREAM_IDLE_S)

    # -- the request path

    async def handle(self, request: IncomingRequest, client: ClientConnection) -> None:
        started = time.perf_counter()
        status = _RESET  # unless an answer is sent: the client went away (the handler was cancelled)
        try:
            outgoing = upstream_request_headers(request.headers, request.client)
            injection = None
            faults = self._store.for_route(self.name)
            if faults and self._may_apply(request, faults):
                injection = await self._select(request, client, outgoing, faults)
            if injection is not None:
                for hook in ("on_connection", "on_request"):
                    outcome = await injection.run(hook)
                    if not isinstance(outcome, Proceed):
                        status = self._answer(request, client, outcome, injection)
                        return
            status = await self._forward(request, client, outgoing, injection)
        except FaultAborted:
            client.abort(rst=True)
        except _TooLarge as too_large:
            status = self._error(request, client, 413, "body", f"request body over {too_large.limit} bytes")
        except ClientBodyBroken as broken:  # raised before anything was written to the client
            if broken.malformed:
                client.must_close = True
                status = self._error(request, client, 400, "body", str(broken))
            else:
                client.abort(rst=False)
        finally:
            self._requests.record(status, time.perf_counter() - started)

    def _may_apply(self, request: IncomingRequest, faults: tuple[ActiveFault, ...]) -> bool:
        """The cheap check: can any fault's path glob fit? (Most requests stop here.)"""
        if faults is not self._faults:  # a new tuple on every change (copy on write): recheck
            self._faults, self._paths = faults, path_filter(faults)
            self._needs_body = any(f.match.needs_body for f in faults)
        return self._paths is None or self._paths.match(request.path) is not None

    async def _select(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing,
                      faults: tuple[ActiveFault, ...]) -> Injection | None:
        path = request.path
        json_body = await self._read_json(request, client, outgoing) if self._needs_body else _NOT_READ
        method, headers = request.method, request.header_map
        selected: tuple[ActiveFault, ...] = ()
        for f in faults:  # a plain loop: nothing is allocated when no fault applies
            if f.decide(method, path, headers, json_body):
                selected += (f,)
        if not selected:
            return None
        upstream_headers = h1.as_multidict(outgoing.headers)
        if outgoing.declared_length is not None:
            upstream_headers["Content-Length"] = str(outgoing.declared_length)  # faults that rewrite the body drop it
        ex = Exchange(
            route=self.name, request_id=headers.get("X-Request-Id") or f"{self._id_prefix}-{next(self._ids)}",
            method=method, path=path, query=request.query, client=request.client,
            rng=selected[0].rng, now=time.monotonic, sleep=selected[0].sleep,
            request_headers=upstream_headers, request_json=json_body,
        )
        return Injection(selected, ex, self._metrics)

    async def _read_json(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing) -> Any:
        """Body predicates need the request body: read it (bounded) and keep it for upstream."""
        self._send_continue(request, client, outgoing)
        raw = await request.body.read_all(self._max_body)
        if raw is None:
            raise _TooLarge(self._max_body)
        request.read_body = raw
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return _NOT_READ

    def _answer(self, request: IncomingRequest, client: ClientConnection, outcome: Reset | Respond,
                injection: Injection | None) -> int:
        if isinstance(outcome, Reset):
            client.abort(rst=not outcome.graceful)
            return _RESET
        headers = [(k.encode("latin-1"), h1.encode_value(v)) for k, v in outcome.headers]
        return self._respond(request, client, outcome.status, outcome.body, headers, injection)

    async def _forward(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing,
                       injection: Injection | None) -> int:
        if request.target[:1] != b"/" and request.target != b"*":
            client.must_close = True
            return self._error(request, client, 400, "target", f"request target {request.target.decode('latin-1')!r} is "
                               "not a path: Brownout is a reverse proxy (no CONNECT, no forward proxying)")
        if outgoing.upgrade == b"websocket":
            client.must_close = True
            return self._error(request, client, 501, "websocket", "WebSocket upgrades are not proxied by Brownout")
        head, body = self._upstream_request(request, client, outgoing, injection)
        try:
            upstream = await self._pool.request(head, body, head_only=request.raw_method == b"HEAD")
        except UpstreamFailed as failure:
            self._metrics.upstream_errors.labels(self.name, failure.cause).inc()
            return self._error(request, client, failure.status, failure.cause, failure.detail)
        try:
            headers, upstream_length = response_headers(upstream.headers)
            status, phrase, length = upstream.status, upstream.reason, upstream_length
            if injection is not None:
                injection.ex.status, injection.ex.response_headers = status, h1.as_multidict(headers)
                outcome = await injection.run("on_response")
                if not isinstance(outcome, Proceed):
                    return self._answer(request, client, outcome, injection)
                if injection.ex.status is not None and injection.ex.status != status:
                    status, phrase = injection.ex.status, h1.reason(injection.ex.status)
                headers = h1.from_multidict(injection.ex.response_headers)
                length = h1.parse_length(injection.ex.response_headers.get("Content-Length"))
            await self._send_response(request, client, upstream, status, phrase, headers, length, upstream_length,
                                      injection)
            return status
        finally:
            upstream.release()

    def _upstream_request(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing,
                          injection: Injection | None) -> tuple[bytearray, Body]:
        """The head and body to send upstream, framed by what is actually sent."""
        headers, declared = outgoing.headers, outgoing.declared_length
        wrapped = injection is not None and injection.uses("wrap_request_body")
        if injection is not None:
            if "Content-Length" not in injection.ex.request_headers:
                declared = None  # a fault that rewrites the body dropped it
            headers = [(n, v) for n, v in h1.from_multidict(injection.ex.request_headers) if n.lower() not in h1.FRAMING]
        has_body = outgoing.declared_length is not None or outgoing.chunked
        body: Body = None
        if has_body and request.read_body is not None:
            body = request.read_body  # a body predicate read it already
        elif has_body and request.body.complete:
            body = request.body.take_all()  # arrived with the head: sent with it, in one write
        elif has_body:
            self._send_continue(request, client, outgoing)
            body = request.body.pieces()
        if body is not None and wrapped:
            assert injection is not None
            body = injection.wrap("wrap_request_body", _as_pieces(body))
        if isinstance(body, bytes):
            headers.append((b"Content-Length", b"%d" % len(body)))
        elif body is not None and declared is not None and not wrapped:
            headers.append((b"Content-Length", b"%d" % declared))
        elif body is not None:
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = _chunked(body)
        headers.insert(0, (b"Host", self._pool.host_header))
        return h1.request_head(request.raw_method, self._pool.prefix + request.target, headers), body

    async def _send_response(self, request: IncomingRequest, client: ClientConnection, upstream: UpstreamResponse,
                             status: int, phrase: bytes, headers: h1.RawHeaders, length: int | None,
                             upstream_length: int | None, injection: Injection | None) -> None:
        self._mark(headers, injection)
        if request.raw_method == b"HEAD" or h1.has_no_body(status):
            client.write(h1.response_head(status, phrase, self._connection_header(request, client, headers, True)))
            return
        pieces: AsyncIterator[bytes] | None = None
        if injection is not None and injection.uses("wrap_response_body"):
            pieces = injection.wrap("wrap_response_body", upstream.body.pieces())
            if length is None and upstream_length is not None and upstream_length <= _MEASURE_MAX:
                # The fault dropped the Content-Length of a body of known size: it rewrites the
                # body. Measure what it produces, so the client gets an exact Content-Length.
                try:
                    whole = b"".join([piece async for piece in pieces])
                except FaultAborted:
                    client.abort(rst=True)
                    return
                headers.append((b"Content-Length", b"%d" % len(whole)))
                client.write(h1.response_head(status, phrase, self._connection_header(request, client, headers, True))
                             + whole)
                return
        chunked = length is None and not request.http10
        if chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
        head = h1.response_head(status, phrase, self._connection_header(request, client, headers, length is not None or chunked))
        if pieces is None and upstream.body.complete:  # the whole body came with the head: one write
            data = upstream.body.take_all()
            if length is not None and len(data) > length:
                data = data[:length]  # never more than declared: the rest would corrupt the next response
            client.write(head + (h1.chunk(data) + h1.LAST_CHUNK if data else h1.LAST_CHUNK) if chunked else head + data)
            if length is not None and len(data) < length:
                client.abort(rst=False)  # shorter than declared: a truncating fault asked for this
            return
        client.write(head)
        await self._stream(client, pieces or upstream.body.pieces(), chunked, length)

    async def _stream(self, client: ClientConnection, pieces: AsyncIterator[bytes], chunked: bool,
                      length: int | None) -> None:
        sent = 0
        try:
            async for piece in pieces:
                if length is not None and sent + len(piece) > length:
                    piece = piece[:length - sent]  # never more than declared (see above)
                if piece:
                    sent += len(piece)
                    client.write(h1.chunk(piece) if chunked else piece)
                    await client.drain()
        except FaultAborted:
            await client.reset_after_flush()
            return
        except (OSError, TimeoutError, UpstreamProtocolError) as exc:
            if client.lost:
                return  # the client went away: nothing to tell it
            # The upstream died mid-stream: break the client's response rather than hang or lie.
            self._metrics.upstream_errors.labels(self.name, "midstream").inc()
            log.warning("upstream_broke_midstream", route=self.name, error=repr(exc))
            client.abort(rst=False)
            return
        if length is not None and sent < length:
            client.abort(rst=False)  # a short read, as a truncating fault asked
        elif chunked:
            client.write(h1.LAST_CHUNK)

    def _connection_header(self, request: IncomingRequest, client: ClientConnection, headers: h1.RawHeaders,
                           framed: bool) -> h1.RawHeaders:
        if not framed or client.closing or client.must_close or not request.keep_alive:
            client.must_close = True
            headers.append((b"Connection", b"close"))
        elif request.http10:
            headers.append((b"Connection", b"keep-alive"))
        return headers

    def _respond(self, request: IncomingRequest, client: ClientConnection, status: int, body: bytes,
                 headers: h1.RawHeaders, injection: Injection | None = None) -> int:
        headers = [(n, v) for n, v in headers if n.lower() not in h1.FRAMING]
        headers.append((b"Content-Length", b"%d" % len(body)))
        self._mark(headers, injection)
        if not request.body.finished:
            client.must_close = True  # answered before the body was read: no clean boundary for the next request
        self._connection_header(request, client, headers, True)
        head = h1.response_head(status, h1.reason(status), headers)
        client.write(head if request.raw_method == b"HEAD" or h1.has_no_body(status) else head + body)
        return status

    def _error(self, request: IncomingRequest, client: ClientConnection, status: int, cause: str, detail: str) -> int:
        body = json.dumps({"error": detail, "route": self.name, "cause": cause}).encode()
        return self._respond(request, client, status, body, [(b"Content-Type", b"application/json")])

    def _send_continue(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing) -> None:
        if outgoing.expects_continue and not request.body.complete:
            client.write(h1.CONTINUE)

    def _mark(self, headers: h1.RawHeaders, injection: Injection | None) -> None:
        if self._fault_header and injection is not None:
            headers.append((b"x-brownout-fault", injection.ids.encode()))


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


async def _as_pieces(body: bytes | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if isinstance(body, bytes):
        yield body
        return
    async for piece in body:
        yield piece


async def _chunked(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for piece in pieces:
        if piece:
            yield h1.chunk(piece)
    yield h1.LAST_CHUNK

