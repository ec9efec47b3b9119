"""The client side of an http route: one protocol per connection, requests parsed by httptools.

Each connection runs one coroutine that first lets the route accept it (connection limits and
connection-phase faults, before any request is read), then takes its requests in order (so
pipelined requests are answered in order) and hands each to the route's handler, which writes
the response straight to the transport. A client that goes away cancels its handler, as
aiohttp's ``handler_cancellation`` does: a hang or a slow upstream stops at once.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import struct
import termios
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import structlog
from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser
from multidict import CIMultiDict

from proxy.flow import BodyStream, WriteFlow, wake
from proxy.h1 import RawHeaders, as_multidict, origin_form
from proxy.sockets import set_rst_on_close

if TYPE_CHECKING:
    from proxy.recording.capture import Capture
    from proxy.taps import Taps

log = structlog.get_logger("brownout.proxy")

MAX_HEAD = 64 * 1024  # bytes of request line and headers; more is a 431
MAX_PIPELINED = 8  # requests parsed ahead of the one being answered; then reading pauses


class IncomingRequest:
    """One request as the route sees it: the raw head, its body stream, and lazy decoded views."""

    __slots__ = ("raw_method", "method", "target", "headers", "keep_alive", "http10", "body", "client",
                 "read_body", "taps", "capture", "_header_map")

    def __init__(self, raw_method: bytes, target: bytes, headers: RawHeaders, keep_alive: bool, http10: bool,
                 body: BodyStream, client: str) -> None:
        self.raw_method, self.method = raw_method, raw_method.decode("ascii")
        self.target, self.headers, self.keep_alive, self.http10 = target, headers, keep_alive, http10
        self.body, self.client = body, client
        self.read_body: bytes | None = None  # set when a body predicate had to read it first
        self.taps: Taps | None = None  # observers following this exchange (tracing, your own)
        self.capture: Capture | None = None  # a recording's capture of this exchange
        self._header_map: CIMultiDict[str] | None = None

    @property
    def header_map(self) -> CIMultiDict[str]:
        if self._header_map is None:
            self._header_map = as_multidict(self.headers)
        return self._header_map

    @property
    def path(self) -> str:
        """The decoded path, as match globs see it."""
        path = self.target.partition(b"?")[0].decode("latin-1")
        return unquote(path) if "%" in path else path

    @property
    def query(self) -> str:
        return self.target.partition(b"?")[2].decode("latin-1")


Handler = Callable[[IncomingRequest, "ClientConnection"], Awaitable[None]]
# Called once per accepted connection, before its first request is read: None or an awaitable
# (connection-phase faults); the connection is served unless it was closed meanwhile.
Acceptor = Callable[["ClientConnection"], Awaitable[None] | None]
REFUSAL_LINGER_S = 2.0  # after answering without reading: keep reading (and discarding) this long


class _HeadTooLarge(Exception):
    pass


class ClientBodyBroken(ConnectionResetError):
    """The client's request body broke: it went away mid-body, or sent bytes that are not HTTP
    (``malformed``: worth a 400 if nothing was answered yet)."""

    def __init__(self, detail: str, *, malformed: bool = False) -> None:
        super().__init__(detail)
        self.malformed = malformed


class ClientConnection(WriteFlow):
    """One client connection. The route writes with ``write``/``drain`` and ends it with
    ``abort`` (RST or FIN) or ``reset_after_flush``; ``must_close`` closes it after the response."""

    def __init__(self, handler: Handler, registry: set[ClientConnection], accept: Acceptor | None = None) -> None:
        self._handler, self._registry, self._accept = handler, registry, accept
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self._parser = HttpRequestParser(self)
        self._queue: deque[IncomingRequest | Exception] = deque()
        self._arrived: asyncio.Future[None] | None = None
        self._current: IncomingRequest | None = None
        self._url = b""
        self._headers: RawHeaders = []
        self._head_size = 0
        self._task: asyncio.Task[None] | None = None
        self.busy = False
        self.must_close = False
        self.closing = False  # the proxy is shutting down: finish the request in flight, then close
        self.stopped_parsing = False  # after an upgrade or malformed bytes: nothing more is read
        self._paused_by: set[str] = set()
        self.idle_since = time.monotonic()
        self.head_since: float | None = None  # loop time a request head began; None when none is pending

    # -- transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else ""
        self._registry.add(self)
        self._task = self._loop.create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        if self.stopped_parsing:
            return
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade:
            self._stop_parsing()  # what follows is another protocol: answer what we have, then close
        except HttpParserError as exc:
            bad = _HeadTooLarge() if self._head_size > MAX_HEAD else exc
            if self._current is not None and not self._current.body.finished:
                self._current.body.fail(ClientBodyBroken(f"malformed request body: {exc}", malformed=True))
            self._queue.append(bad)
            self._stop_parsing()
            self._wake()

    def eof_received(self) -> bool:
        # A FIN from the client means it gave up, as nginx (499) and aiohttp read it: returning
        # False closes the transport, which cancels the handler (a hang or slow upstream ends).
        if self._current is not None:
            self._current.body.fail(ClientBodyBroken("client closed the connection mid-body"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("client closed the connection")
        self._registry.discard(self)
        self._wake_writer(self._lost)
        if self._current is not None:
            self._current.body.fail(ClientBodyBroken("client closed the connection mid-body"))
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # -- parser callbacks

    def on_message_begin(self) -> None:
        self._url, self._headers, self._head_size = b"", [], 0
        self.head_since = self._loop.time()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._grow(len(name) + len(value))

    def on_headers_complete(self) -> None:
        self.head_since = None
        parser = self._parser
        assert self.transport is not None
        body = BodyStream(self._pause_for_body, self._resume_for_body)
        url = self._url if self._url[:1] == b"/" else origin_form(self._url) or self._url
        self._current = IncomingRequest(parser.get_method(), url, self._headers, parser.should_keep_alive(),
                                        parser.get_http_version() == "1.0", body, self.client)
        self._queue.append(self._current)
        if len(self._queue) > MAX_PIPELINED:
            self._pause("pipelined")  # a client that sends and never reads must not fill our memory
        self._wake()

    def on_body(self, data: bytes) -> None:
        if self._current is not None:
            self._current.body.feed(data)

    def on_message_complete(self) -> None:
        if self._current is not None:
            self._current.body.finish()

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge()

    # -- serving

    async def _serve(self) -> None:
        try:
            if self._accept is not None:
                opening = self._accept(self)
                if opening is not None:
                    await opening
                if self.must_close:
                    return  # refused, reset or answered at accept
            while True:
                while not self._queue:
                    self._arrived = self._loop.create_future()
                    await self._arrived
                request = self._queue.popleft()
                if len(self._queue) < MAX_PIPELINED:
                    self._resume("pipelined")
                if isinstance(request, Exception):
                    self._reject(request)
                    return
                self.busy = True
                try:
                    await self._handler(request, self)
                except Exception:  # the route answers every error itself; this is the last line of defence
                    log.exception("request_failed", target=request.target.decode("latin-1"))
                    self.abort(rst=False)
                if self._write_paused:
                    await self.drain()  # the client reads slower than we answer: wait for it
                self.busy = False
                self.idle_since = time.monotonic()
                if self.must_close or self.closing or not request.keep_alive or not request.body.finished:
                    break  # (an unread body leaves no clean boundary for the next request)
                if self.stopped_parsing and not self._queue:
                    break  # an upgrade or a malformed stream: nothing more can be read
            self.close()
        except (asyncio.CancelledError, OSError):
            pass  # the client went away

    def _reject(self, error: Exception) -> None:
        if isinstance(error, _HeadTooLarge):
            status, detail = 431, f"request head over {MAX_HEAD} bytes"
        else:
            status, detail = 400, f"malformed HTTP request: {error}"
        body = json.dumps({"error": detail}).encode()
        self.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                   % (status, b"Bad Request" if status == 400 else b"Request Header Fields Too Large", len(body), body))
        self.close()

    def _wake(self) -> None:
        arrived, self._arrived = self._arrived, None
        wake(arrived)

    def _stop_parsing(self) -> None:
        self.stopped_parsing = True
        self._pause("stopped")

    # Reading pauses while any reason holds: a request body buffered past its high-water mark,
    # too many pipelined requests, or a byte stream we no longer parse.

    def _pause_for_body(self) -> None:
        self._pause("body")

    def _resume_for_body(self) -> None:
        self._resume("body")

    def _pause(self, reason: str) -> None:
        if not self._paused_by and self.transport is not None:
            self.transport.pause_reading()
        self._paused_by.add(reason)

    def _resume(self, reason: str) -> None:
        if reason in self._paused_by:
            self._paused_by.discard(reason)
            if not self._paused_by and self.transport is not None:
                self.transport.resume_reading()

    # -- what the route uses

    @property
    def lost(self) -> bool:
        return self._lost is not None

    def refuse(self, response: bytes | bytearray, linger: float = REFUSAL_LINGER_S) -> None:
        """Answer without (reading) a request, then close, lingering: the response is written,
        our side half-closed, and what the client still sends is read and dropped for ``linger``
        seconds, so the kernel does not answer it with an RST that could destroy the response."""
        transport = self.transport
        if transport is None or self._lost is not None:
            return
        self.must_close = self.stopped_parsing = True
        self.head_since = None
        self._registry.discard(self)  # it no longer counts against the route's connection limit
        if self._paused_by:
            self._paused_by.clear()
            transport.resume_reading()
        transport.write(response)
        if transport.can_write_eof():
            transport.write_eof()
        self._loop.call_later(linger, transport.close)
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()  # a handler waiting for the next request has nothing left to do

    def write(self, data: bytes | bytearray) -> None:
        if self._lost is None and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self, *, rst: bool) -> None:
        """Close without (the rest of) a response: RST (SO_LINGER 0) or a plain FIN."""
        transport = self.transport
        if transport is None:
            return
        self.must_close = True
        if rst:
            set_rst_on_close(transport)
            transport.abort()
        else:
            transport.close()

    async def reset_after_flush(self, wait: float = 0.2) -> None:
        """RST after what was written has been delivered (ACKed): an RST makes the kernel drop
        unsent data, so "N bytes then a reset" waits for an empty send queue, or ``wait`` seconds."""
        transport = self.transport
        sock: Any = transport.get_extra_info("socket") if transport is not None else None
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
        self.abort(rst=True)

