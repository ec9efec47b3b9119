"""A small, fast HTTP/1.1 keep-alive client for load: asyncio.Protocol + httptools.

Why not aiohttp's ClientSession: it costs ~70 µs of CPU per request (≈14k req/s per core)
and a load generator must never be the bottleneck. Here a request is pre-encoded bytes and
a callback; no task, future or header dict is created per request. At most ``connections``
sockets; requests beyond them wait in a FIFO (their wait counts in their latency). A
periodic sweep (not a timer per request) times requests out.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from faults.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, never empty
    host_header: str


def parse_target(url: str, field: str = "url") -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"must be an http:// or https:// URL, got {url!r}", field)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput(f"bad port in {url!r}", field) from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, parts.netloc.rpartition("@")[2])


class Job:
    """One request on its way. Clock seconds: ``scheduled`` (when it was due), ``origin``
    (where its latency starts: the schedule, or the actual start if that was earlier) and
    ``deadline``."""

    __slots__ = ("wire", "scheduled", "origin", "deadline", "tag", "retried", "trace", "payload")

    def __init__(self, wire: bytes, scheduled: float, deadline: float, tag: object = None,
                 origin: float | None = None, payload: int | None = None) -> None:
        self.payload = payload  # the corpus entry it was made from
        self.wire = wire
        self.scheduled = scheduled
        self.origin = scheduled if origin is None else origin
        self.deadline = deadline
        self.tag = tag
        self.retried = False
        self.trace: object = None  # a sampled request's span (``brownout.load.tracing``)


# (job, status, error, bytes received, body or None)
DoneCallback = Callable[[Job, int, "str | None", int, "bytes | None"], None]


class _Conn(asyncio.Protocol):
    __slots__ = ("client", "transport", "parser", "job", "nbytes", "body", "headers_done", "served")

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.job: Job | None = None
        self.nbytes = 0
        self.body: list[bytes] | None = None
        self.headers_done = False
        self.served = 0  # responses completed on this connection

    def send(self, job: Job) -> None:
        self.job = job
        self.nbytes = 0
        self.headers_done = False
        if self.client.keep_bodies:
            self.body = []
        assert self.transport is not None  # only idle, connected conns are handed jobs
        self.transport.write(job.wire)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.job is None:  # bytes nobody asked for: the connection is out of step
            self.client._drop_conn(self)
            return
        self.nbytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("protocol")

    # httptools callbacks (only the ones defined here are called)
    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if self.body is not None:
            self.body.append(body)

    def on_message_complete(self) -> None:
        job, self.job = self.job, None
        if job is None:
            return
        body = b"".join(self.body) if self.body is not None else None
        self.body = None
        self.served += 1
        self.client._complete(self, job, self.parser.get_status_code(), None, self.nbytes, body,
                              self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        job, self.job = self.job, None
        if job is not None:
            if self.headers_done and exc is None:  # body delimited by EOF: a complete response
                body = b"".join(self.body) if self.body is not None else None
                self.client._complete(self, job, self.parser.get_status_code(), None, self.nbytes, body, False)
                return
            if self.served and not self.nbytes and not job.retried and not self.client._closed:
                # The server closed an idle keep-alive socket as we reused it: not the
                # request's fault. Send it again once, on another connection.
                job.retried = True
                self.client._drop_conn(self)
                self.client.in_flight -= 1
                self.client.submit(job)
                return
            self.client._finish(job, 0, "reset", self.nbytes, None)
        self.client._drop_conn(self)

    def _fail(self, error: str) -> None:
        job, self.job = self.job, None
        if job is not None:
            self.client._finish(job, 0, error, self.nbytes, None)
        self.client._drop_conn(self)


class HttpClient:
    """Send pre-encoded requests over at most ``connections`` keep-alive sockets."""

    def __init__(
        self,
        target: Target,
        on_done: DoneCallback,
        *,
        connections: int = 64,
        request_timeout: float = 10.0,
        keep_bodies: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if connections < 1:
            raise InvalidInput("must be >= 1", "connections")
        self.target = target
        self.on_done = on_done
        self.connections = connections
        self.request_timeout = request_timeout
        self.keep_bodies = keep_bodies
        self._loop = asyncio.get_running_loop()
        self.clock = clock or time.monotonic
        self._ssl = ssl_module.create_default_context() if target.scheme == "https" else None
        self._idle: list[_Conn] = []
        self._busy: set[_Conn] = set()
        self._pending: deque[Job] = deque()
        self._connecting = 0
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None
        self.in_flight = 0  # queued + on the wire

    def submit(self, job: Job) -> None:
        """Send now on an idle connection, or queue (opening a connection if allowed)."""
        self.in_flight += 1
        if self._sweeper is None:
            self._schedule_sweep()
        if self._idle:
            conn = self._idle.pop()
            self._busy.add(conn)
            conn.send(job)
            return
        self._pending.append(job)
        if len(self._busy) + self._connecting < self.connections:
            self._open()

    async def request(self, wire: bytes) -> tuple[int, str | None, int, bytes | None]:
        """Convenience: send one request and wait for (status, error, bytes, body)."""
        fut: asyncio.Future[tuple[int, str | None, int, bytes | None]] = self._loop.create_future()
        now = self.clock()
        self.submit(Job(wire, now, now + self.request_timeout, fut))
        return await fut

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self._idle) + list(self._busy):
            if conn.transport is not None:
                conn.transport.close()
        while self._pending:
            self._finish(self._pending.popleft(), 0, "reset", 0, None)
        self._idle.clear()
        await asyncio.sleep(0)

    # internals

    def _open(self) -> None:
        self._connecting += 1
        self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, conn = await self._loop.create_connection(
                lambda: _Conn(self), self.target.host, self.target.port, ssl=self._ssl
            )
        except (OSError, ssl_module.SSLError):
            self._connecting -= 1
            # With nothing open to serve them, queued requests cannot start: fail them now.
            if self._pending:
                self._finish(self._pending.popleft(), 0, "connect", 0, None)
            if not self._busy and not self._idle and not self._connecting:
                while self._pending:
                    self._finish(self._pending.popleft(), 0, "connect", 0, None)
            return
        self._connecting -= 1
        if self._closed:
            conn.transport.close()  # type: ignore[union-attr]
            return
        self._dispatch(conn)

    def _dispatch(self, conn: _Conn) -> None:
        if self._pending:
            self._busy.add(conn)
            conn.send(self._pending.popleft())
        else:
            self._busy.discard(conn)
            self._idle.append(conn)

    def _complete(self, conn: _Conn, job: Job, status: int, error: str | None, nbytes: int,
                  body: bytes | None, keep_alive: bool) -> None:
        if keep_alive and not self._closed:
            self._dispatch(conn)
        else:
            self._drop_conn(conn)
        self._finish(job, status, error, nbytes, body)

    def _finish(self, job: Job, status: int, error: str | None, nbytes: int, body: bytes | None) -> None:
        self.in_flight -= 1
        if isinstance(job.tag, asyncio.Future):
            if not job.tag.done():
                job.tag.set_result((status, error, nbytes, body))
            return
        self.on_done(job, status, error, nbytes, body)

    def _drop_conn(self, conn: _Conn) -> None:
        self._busy.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        if conn.transport is not None and not conn.transport.is_closing():
            conn.transport.close()
        if conn.job is not None:  # closed under a request (timeout, stray bytes)
            job, conn.job = conn.job, None
            self._finish(job, 0, "reset", conn.nbytes, None)
        if self._pending and not self._closed and len(self._busy) + self._connecting < self.connections:
            self._open()

    def _schedule_sweep(self) -> None:
        interval = min(0.05, max(0.005, self.request_timeout / 10))
        self._sweeper = self._loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        if self._closed:
            return
        now = self.clock()
        while self._pending and self._pending[0].deadline <= now:
            self._finish(self._pending.popleft(), 0, "timeout", 0, None)
        for conn in [c for c in self._busy if c.job is not None and c.job.deadline <= now]:
            job, conn.job = conn.job, None
            self._finish(job, 0, "timeout", conn.nbytes, None)  # type: ignore[arg-type]
            self._drop_conn(conn)
        if self.in_flight:
            self._schedule_sweep()
