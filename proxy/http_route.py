"""An ``http`` route: a streaming reverse proxy with fault injection.

Below aiohttp's Request/Response objects, where the profile said the time went (benchmarks/README.md):
client connections are ``ClientConnection`` protocols, upstream ones come from an
``UpstreamPool``, both parsed by httptools, and bytes go to the transports as they are. With no
fault selected a request costs one header pass each way and usually one write each way; the
fault decision is one cheap check (an empty tuple means no work at all). Faults see the exchange
through their own views at the hooks of the contract (``faults.base``); connection-phase faults
run once per accepted connection, from their own tuple, so requests pay nothing for them. A
fault's abort (``AbortExchange``) is handled in one place, ``handle``; how a rewritten body is
framed follows what the faults declare (``BodyEdit``), never a guess from the headers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import structlog

from faults import AbortExchange, BodyEdit, ExchangeData, Hook, Respond
from faults.exchange import NO_JSON
from proxy import h1
from proxy.config import RouteConfig
from proxy.forward_headers import Outgoing, response_headers, upstream_request_headers
from proxy.h1_server import ClientBodyBroken, ClientConnection, IncomingRequest
from proxy.http_admission import RESET_STATUS, ConnectionGate, abort
from proxy.http_response import MEASURE_MAX, ResponseWriter
from proxy.injection import Injection
from proxy.leases import ActiveFault, FaultStore, path_filter
from proxy.metrics import ProxyMetrics
from proxy.observers import ExchangeEnd, ExchangeObserver, ExchangeStart, ObserverList
from proxy.retry_after import RetryAfterLedger, advertised_wait_s, body_identity, header_identity
from proxy.taps import Taps
from proxy.upstream_pool import Body, UpstreamFailed, UpstreamPool

if TYPE_CHECKING:
    from proxy.recording.capture import Recorder

log = structlog.get_logger("brownout.proxy")

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_UPSTREAM_IDLE_S = 15.0  # pooled upstream connections idle this long are closed


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
        self._retry_after = RetryAfterLedger()  # who was told to come back when (empty: nothing to check)
        self._retry_violations = metrics.retry_after_violations.labels(config.name)
        self._faults: tuple[ActiveFault, ...] = ()
        self._needs_body = False
        self._needs_headers = False
        self._paths: re.Pattern[str] | None = None
        self.observers = ObserverList()  # told of every effect and exchange (tracing, your own)
        self.recorder: Recorder | None = None  # set by the recording service while a recording is active here
        self._out = ResponseWriter(config.name, metrics, fault_header=fault_header)
        self._gate = ConnectionGate(config, store, metrics, self._connections, self.observers,
                                    fault_header=fault_header, id_prefix=self._id_prefix)
        self.bound: tuple[str, int] | None = None

    # -- lifecycle

    async def start(self) -> None:
        address = self.config.address
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: ClientConnection(self.handle, self._connections, self._gate.accept), address.host, address.port,
            reuse_address=True, backlog=1024)
        self.bound = self._listener.sockets[0].getsockname()[:2]
        self._housekeeping = asyncio.create_task(self._housekeeping_loop())

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

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(self._gate.sweep_interval)
            self._gate.sweep()
            self._pool.close_idle(_UPSTREAM_IDLE_S)

    # -- the request path

    async def handle(self, request: IncomingRequest, client: ClientConnection) -> None:
        started = time.perf_counter()
        status = RESET_STATUS  # unless an answer is sent: the client went away (the handler was cancelled)
        injection: Injection | None = None
        try:
            outgoing = upstream_request_headers(request.headers, request.client)
            if not outgoing.host and not request.http10:
                client.must_close = True
                status = self._out.error(request, client, 400, "host", "an HTTP/1.1 request must have a Host header")
                return
            if self.observers:  # the countdown inlined: this runs for every request (ExchangeObserver.counts_down)
                counted = self.observers.counted
                if counted is None or outgoing.traceparent or counted.until_sampled == 1:
                    request.taps = self._open_taps(request, outgoing)
                else:
                    counted.until_sampled -= 1
            if self.recorder is not None:
                request.capture = self.recorder.capture(request.method, request.target, request.headers)
            if self._retry_after:  # a Retry-After is outstanding on this route: is this one back too early?
                await self._check_retry(request, client, outgoing)
            faults = self._store.for_route(self.name)
            if faults and self._may_apply(request, faults):
                json_body = await self._read_json(request, client, outgoing) if self._needs_body else NO_JSON
                injection = self._select(request, outgoing, faults, json_body)
                if injection is not None:
                    outcome = await injection.run(Hook.ON_REQUEST)
                    if isinstance(outcome, Respond):
                        await self._note_retry_after(request, client, outgoing, outcome, forwarded=False)
                        status = self._answer(request, client, outcome, injection)
                        return
            status = await self._forward(request, client, outgoing, injection)
        except AbortExchange as aborted:  # the one place a fault's abort is carried out
            status = RESET_STATUS
            await abort(client, aborted.reset)
        except _TooLarge as too_large:
            status = self._out.error(request, client, 413, "body", f"request body over {too_large.limit} bytes")
        except ClientBodyBroken as broken:  # raised before anything was written to the client
            if broken.malformed:
                client.must_close = True
                status = self._out.error(request, client, 400, "body", str(broken))
            else:
                client.abort(rst=False)
        finally:
            self._requests.record(status, time.perf_counter() - started)
            if injection is not None or request.taps is not None or request.capture is not None \
                    or self.observers.watch_all:
                self._ended(request, injection, status, started)

    def _ended(self, request: IncomingRequest, injection: Injection | None, status: int, started: float) -> None:
        """Once per exchange, in ``finally``: on_exchange_end hooks, effects, the capture, observers."""
        effects = injection.finish(status, self.observers) if injection is not None else ()
        duration = time.perf_counter() - started
        if request.capture is not None:
            request.capture.finish(duration, tuple(e.fault_id for e in effects if e.hook is not None))
        if not self.observers or (request.taps is None and not self.observers.watch_all):
            return
        if injection is not None:
            request_id = injection.data.request_id
        else:
            request_id = request.taps.start.request_id if request.taps is not None else self._request_id(
                h1.header_value(request.headers, b"x-request-id"))  # an observer that watches all: rare, a scan
        end = ExchangeEnd(self.name, request_id, request.method, request.path, status, time.time() - duration,
                          duration, effects)  # positional: this runs once per followed exchange
        if request.taps is not None:
            request.taps.ended(end)
        if self.observers.watch_all:
            for observer in self.observers:
                try:
                    observer.exchange_ended(end)
                except Exception:
                    log.exception("observer_failed", route=self.name, observer=type(observer).__name__)

    def _open_taps(self, request: IncomingRequest, outgoing: Outgoing) -> Taps | None:
        observers: list[ExchangeObserver] = self.observers
        if not self.observers.follow_all:  # one of them samples: ask each
            followers: list[ExchangeObserver] | None = None
            for observer in self.observers:
                if observer.follows(request.headers, outgoing.traceparent):
                    followers = [observer] if followers is None else [*followers, observer]
            if followers is None:
                return None  # nothing is built for an exchange no observer follows (sampled out)
            observers = followers
        start = ExchangeStart(self.name, self._request_id(outgoing.request_id), request.method,
                              request.target.decode("latin-1"), request.headers, request.client, time.time(),
                              "1.0" if request.http10 else "1.1")
        return Taps.open(observers, start)

    def _request_id(self, given: bytes | None) -> str:
        """The client's X-Request-Id (found in the forwarding header pass), else one of ours."""
        return given.decode("latin-1") if given else f"{self._id_prefix}-{next(self._ids)}"

    def _may_apply(self, request: IncomingRequest, faults: tuple[ActiveFault, ...]) -> bool:
        """The cheap check: can any fault's path glob fit? (Most requests stop here.)"""
        if faults is not self._faults:  # a new tuple on every change (copy on write): recheck
            self._faults, self._paths = faults, path_filter(faults)
            self._needs_body = any(f.needs_body for f in faults)
            self._needs_headers = any(f.match.headers for f in faults)
        return self._paths is None or self._paths.match(request.path) is not None

    def _select(self, request: IncomingRequest, outgoing: Outgoing, faults: tuple[ActiveFault, ...],
                json_body: Any) -> Injection | None:
        path, method = request.path, request.method
        headers = request.header_map if self._needs_headers else _NO_HEADERS  # built only for a header match
        selected: tuple[ActiveFault, ...] = ()
        for f in faults:  # a plain loop: nothing is allocated when no fault applies
            if f.decide(method, path, headers, json_body):
                selected += (f,)
        if not selected:
            return None
        wire = outgoing.headers.copy()  # as it is now: Host and framing are added to ``outgoing.headers`` later
        if outgoing.declared_length is not None:
            wire.append((b"Content-Length", b"%d" % outgoing.declared_length))  # for faults to read
        request_id = (request.taps.start.request_id if request.taps is not None
                      else self._request_id(outgoing.request_id))
        data = ExchangeData(
            route=self.name, request_id=request_id, method=method, path=path, query=request.query,
            client=request.client, now=time.monotonic, request_wire=wire, request_json=json_body,
        )
        return Injection(selected, data, self._metrics)

    async def _read_json(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing) -> Any:
        """Body predicates need the request body: read it (bounded) and keep it for upstream."""
        raw = await self._whole_body(request, client, outgoing)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return NO_JSON

    async def _whole_body(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing) -> bytes:
        """The request body, read whole (bounded) and kept for upstream in ``read_body``."""
        if request.read_body is None:
            self._send_continue(request, client, outgoing)
            raw = await request.body.read_all(self._max_body)
            if raw is None:
                raise _TooLarge(self._max_body)
            request.read_body = raw
        return request.read_body

    async def _identity(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing, *,
                        forwarded: bool) -> bytes | None:
        """Who this request is, for Retry-After (``proxy.retry_after``); None once its body went upstream unread."""
        identity = header_identity(request.header_map)
        if identity is not None:
            return identity
        if outgoing.declared_length is None and not outgoing.chunked:
            body = b""
        elif request.read_body is not None:
            body = request.read_body
        elif forwarded:
            return None
        else:
            body = await self._whole_body(request, client, outgoing)
        return body_identity(request.client, request.raw_method, request.target, body)

    async def _check_retry(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing) -> None:
        identity = await self._identity(request, client, outgoing, forwarded=False)
        early_s = self._retry_after.arrived(identity, time.monotonic()) if identity is not None else None
        if early_s is not None:
            self._retry_violations.inc()
            log.info("retry_after_violation", route=self.name, request_id=request.header_map.get("X-Request-Id"),
                     early_s=round(early_s, 3))

    async def _note_retry_after(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing,
                                outcome: Respond, *, forwarded: bool) -> None:
        """A fault answers with Retry-After: remember who must wait, and until when."""
        wait_s = advertised_wait_s(outcome.headers) if outcome.headers else None
        if wait_s is None:
            return
        identity = await self._identity(request, client, outgoing, forwarded=forwarded)
        if identity is not None:
            self._retry_after.advertise(identity, wait_s, time.monotonic())

    def _answer(self, request: IncomingRequest, client: ClientConnection, outcome: Respond,
                injection: Injection | None) -> int:
        headers = [(k.encode("latin-1"), h1.encode_value(v)) for k, v in outcome.headers]
        return self._out.respond(request, client, outcome.status, outcome.body, headers, injection)

    async def _forward(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing,
                       injection: Injection | None) -> int:
        if request.target[:1] != b"/" and request.target != b"*":
            client.must_close = True
            return self._out.error(request, client, 400, "target", f"request target {request.target.decode('latin-1')!r} is "
                               "not a path: Brownout is a reverse proxy (no CONNECT, no forward proxying)")
        if outgoing.upgrade == b"websocket":
            client.must_close = True
            return self._out.error(request, client, 501, "websocket", "WebSocket upgrades are not proxied by Brownout")
        if injection is None:
            head, body = self._upstream_head(request, outgoing.headers, self._request_body(request, client, outgoing),
                                             outgoing.declared_length)
        else:
            head, body = await self._faulted_upstream_request(request, client, outgoing, injection)
        try:
            upstream = await self._pool.request(head, body, head_only=request.raw_method == b"HEAD")
        except UpstreamFailed as failure:
            self._metrics.upstream_errors.labels(self.name, failure.cause).inc()
            if request.taps is not None:
                request.taps.upstream_answered(None, failure.cause)
            return self._out.error(request, client, failure.status, failure.cause, failure.detail)
        if request.taps is not None:
            request.taps.upstream_answered(upstream.status)
        try:
            headers, upstream_length = response_headers(upstream.headers)
            status, phrase, length = upstream.status, upstream.reason, upstream_length
            if injection is not None:
                data = injection.data
                data.set_response(status, headers.copy())  # as it is now: the writer adds its own
                if injection.uses(Hook.ON_RESPONSE):
                    outcome = await injection.run(Hook.ON_RESPONSE)
                    if isinstance(outcome, Respond):
                        await self._note_retry_after(request, client, outgoing, outcome, forwarded=True)
                        return self._answer(request, client, outcome, injection)
                if data.status is not None and data.status != status:
                    status, phrase = data.status, h1.reason(data.status)
                if data.response_wire() is None:  # a fault read or rewrote them
                    headers = h1.from_multidict(data.response_headers)
                    length = h1.parse_length(data.response_headers.get("Content-Length"))
            await self._out.send(request, client, upstream, status, phrase, headers, length, upstream_length,
                                      injection)
            return status
        finally:
            upstream.release()

    def _request_body(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing) -> Body:
        """The client's body as it is to be sent: whole when it is all here, else its pieces."""
        if outgoing.declared_length is None and not outgoing.chunked:
            return None
        if request.read_body is not None:
            body: Body = request.read_body  # a body predicate read it already
        elif request.body.complete:
            body = request.body.take_all()  # arrived with the head: sent with it, in one write
        else:
            self._send_continue(request, client, outgoing)
            body = request.body.pieces()
        if request.taps is not None:
            body = request.taps.request_body(body)
        return body if request.capture is None else request.capture.request_body(body)

    def _upstream_head(self, request: IncomingRequest, headers: h1.RawHeaders, body: Body,
                       declared: int | None) -> tuple[bytearray, Body]:
        """The head and body to send upstream, framed by what is actually sent."""
        if isinstance(body, bytes):
            headers.append((b"Content-Length", b"%d" % len(body)))
        elif body is not None and declared is not None:
            headers.append((b"Content-Length", b"%d" % declared))
        elif body is not None:
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = h1.chunked(body)
        if request.taps is not None:
            request.taps.upstream_request(headers)
        headers.insert(0, (b"Host", self._pool.host_header))
        return h1.request_head(request.raw_method, self._pool.prefix + request.target, headers), body

    async def _faulted_upstream_request(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing,
                                        injection: Injection) -> tuple[bytearray, Body]:
        """As ``_upstream_head``, with the faults' headers, and their body wrappers framed as they declare."""
        data = injection.data
        headers = outgoing.headers if data.request_wire() is not None else [  # no fault read or rewrote them
            (n, v) for n, v in h1.from_multidict(data.request_headers) if n.lower() not in h1.FRAMING]
        body = self._request_body(request, client, outgoing)
        declared = outgoing.declared_length
        if body is not None and injection.uses(Hook.WRAP_REQUEST_BODY):
            edit = injection.edit(Hook.WRAP_REQUEST_BODY)
            size = len(body) if isinstance(body, bytes) else declared
            body = injection.wrap(Hook.WRAP_REQUEST_BODY, _as_pieces(body))
            if edit is BodyEdit.REWRITE and size is not None and size <= MEASURE_MAX:
                body = b"".join([piece async for piece in body])  # measured: sent with its exact length
            elif edit is not BodyEdit.NONE:
                declared = None  # new bytes of unknown length: chunked
        return self._upstream_head(request, headers, body, declared)

    def _send_continue(self, request: IncomingRequest, client: ClientConnection, outgoing: Outgoing) -> None:
        if outgoing.expects_continue and not request.body.complete:
            client.write(h1.CONTINUE)


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


async def _as_pieces(body: bytes | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if isinstance(body, bytes):
        yield body
        return
    async for piece in body:
        yield piece
