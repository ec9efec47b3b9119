"""Raw keep-alive connections to one upstream, with responses parsed by httptools.

A request is its head (bytes the route built) and a body (bytes, or an async iterator of
wire bytes, uploaded alongside waiting for the answer). ``request()`` returns once the
response head is in; its body then streams through a ``BodyStream``. A connection goes
back to the pool only when its response was read to the end and both sides keep it alive.
The read timeout counts upstream silence, as aiohttp's ``sock_read`` does; one watcher per
pool checks the connections in use a few times per timeout (a timer per request would cost more
than the rest of the exchange's Python code).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from proxy.flow import BodyStream, WriteFlow
from proxy.h1 import RawHeaders, has_no_body

Body = bytes | AsyncIterator[bytes] | None
MAX_IDLE = 512  # idle connections kept per upstream; more are closed after use


class UpstreamFailed(Exception):
    """The upstream could not give us a response head (→ 502/504)."""

    def __init__(self, status: int, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.cause, self.detail = status, cause, detail


class UpstreamProtocolError(Exception):
    """The upstream answered something we cannot forward (→ 502)."""


class _ClosedBeforeAnswer(ConnectionResetError):
    def __init__(self, received: bool) -> None:
        super().__init__("upstream closed the connection before answering")
        self.received = received


class UpstreamResponse:
    __slots__ = ("status", "reason", "headers", "body", "_connection")

    def __init__(self, status: int, reason: bytes, headers: RawHeaders, body: BodyStream,
                 connection: UpstreamConnection) -> None:
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self._connection = connection

    def release(self) -> None:
        """Back to the pool if the response was read to its end; closed otherwise."""
        self._connection.release()


class UpstreamConnection(WriteFlow):
    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._parser = HttpResponseParser(self)
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._response: UpstreamResponse | None = None
        self._upload: asyncio.Task[None] | None = None
        self._headers: RawHeaders = []
        self._reason = b""
        self._received = self._complete = self._keep_alive = self._interim = self._head_only = False
        self._last_read = 0.0
        self.idle_since = 0.0

    # -- transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        self._received = True
        try:
            self._parser.feed_data(data)
        except (HttpParserError, HttpParserUpgrade) as exc:
            self._break(UpstreamProtocolError(f"{exc.__class__.__name__}: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("upstream closed the connection")
        self._pool.forget(self)
        self._wake_writer(self._lost)
        if self._head is not None and not self._head.done():
            self._head.set_exception(_ClosedBeforeAnswer(self._received))
        elif self._response is not None and not self._complete:
            if self._reads_to_close():
                self._finish()  # a body without length or chunking ends when the upstream closes
            else:
                self._response.body.fail(self._lost)

    # -- parser callbacks

    def on_message_begin(self) -> None:
        self._headers, self._reason = [], b""

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status == 101:  # we never forward an Upgrade, so this is not an answer we can relay
            self._break(UpstreamProtocolError("101 Switching Protocols to a request that asked for no upgrade"))
            return
        if status < 200:
            self._interim = True  # 100 Continue and friends: the real head follows
            return
        self._keep_alive = self._parser.should_keep_alive()
        assert self.transport is not None
        body = BodyStream(self.transport.pause_reading, self._resume_reading)
        self._response = UpstreamResponse(status, self._reason, self._headers, body, self)
        if self._head_only or has_no_body(status):
            if self._head_only:  # the parser would wait for the Content-Length bytes a HEAD never gets
                self._parser = HttpResponseParser(self)
            self._finish()
        if self._head is not None and not self._head.done():
            self._head.set_result(self._response)

    def on_body(self, data: bytes) -> None:
        if self._response is not None and not self._complete:
            self._response.body.feed(data)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        elif not self._complete:
            self._finish()

    # -- one exchange

    def send(self, head: bytes | bytearray, body: Body, head_only: bool) -> asyncio.Future[UpstreamResponse]:
        """Send one request; the future resolves with the response head (a plain future, not a
        coroutine: one frame less to resume on the hottest await)."""
        assert self.transport is not None
        self._head = self._loop.create_future()
        self._response, self._received, self._complete, self._head_only = None, False, False, head_only
        self._last_read = self._loop.time()
        if body is None or isinstance(body, bytes):
            self.transport.write(head + body if body else head)
        else:
            self.transport.write(head)
            self._upload = self._loop.create_task(self._send_body(body))
        return self._head

    async def _send_body(self, body: AsyncIterator[bytes]) -> None:
        assert self.transport is not None
        try:
            async for data in body:
                self.transport.write(data)
                await self.drain()
        except BaseException as exc:  # the client's body broke (or a fault aborted it): so does this request
            if self._head is not None and not self._head.done():
                self._head.set_exception(exc if isinstance(exc, Exception) else ConnectionResetError())
            self.transport.abort()
            if not isinstance(exc, Exception):
                raise

    def release(self) -> None:
        self._pool.busy.discard(self)
        upload, self._upload = self._upload, None
        uploaded = upload is None or (upload.done() and not upload.cancelled() and upload.exception() is None)
        if upload is not None and not upload.done():
            upload.cancel()
        assert self.transport is not None
        body_read = self._response is None or self._response.body.finished  # (else unread bytes, reading paused)
        if self._complete and body_read and self._keep_alive and uploaded and self._lost is None \
                and not self.transport.is_closing():
            self._response = None
            self._pool.keep(self)
        elif self.transport is not None:
            self.transport.abort()

    # -- internals

    def _finish(self) -> None:
        self._complete = True
        assert self._response is not None
        self._response.body.finish()

    def _reads_to_close(self) -> bool:
        """No Content-Length and no chunked coding last: the body ends when the upstream closes
        (RFC 9112 §6.3)."""
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding"
                                                and value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"):
                return False
        return True

    def _break(self, error: Exception) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        elif self._response is not None:
            self._response.body.fail(error)
        assert self.transport is not None
        self.transport.abort()

    def _resume_reading(self) -> None:
        self._last_read = self._loop.time()  # waiting on our client is not upstream silence
        if self.transport is not None:
            self.transport.resume_reading()

    def check_silence(self, now: float, timeout: float) -> None:
        """Called by the pool's watcher: break the exchange if the upstream has been silent too long."""
        if self._complete or self._lost is not None or self.transport is None:
            return
        if self._response is not None and not self.transport.is_reading():
            self._last_read = now  # waiting on our client is not upstream silence
        elif now - self._last_read >= timeout:
            self._break(TimeoutError(f"upstream silent for {timeout:g}s"))


class UpstreamPool:
    """Connections to the upstream of one route (``http://`` or ``https://``, with a path prefix)."""

    def __init__(self, base_url: str, *, connect_timeout: float, read_timeout: float) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.encode("idna")
        self.prefix = parts.path.rstrip("/").encode()
        self.base_url = base_url
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._idle: list[UpstreamConnection] = []
        self.busy: set[UpstreamConnection] = set()
        self._watcher: asyncio.Task[None] | None = None

    async def request(self, head: bytes | bytearray, body: Body, *, head_only: bool = False) -> UpstreamResponse:
        while self._idle:
            connection = self._idle.pop()
            if connection._lost is None:
                try:
                    return await self._exchange(connection, head, body, head_only)
                except _ClosedBeforeAnswer as closed:
                    # The upstream closed this idle connection as we reused it: try a fresh one,
                    # when nothing was answered and the request can be sent again.
                    if closed.received or not (body is None or isinstance(body, bytes)):
                        raise self._failed("protocol", closed) from None
                break
        connection = await self._connect()
        try:
            return await self._exchange(connection, head, body, head_only)
        except _ClosedBeforeAnswer as closed:
            raise self._failed("protocol", closed) from None

    async def _exchange(self, connection: UpstreamConnection, head: bytes | bytearray, body: Body, head_only: bool) -> UpstreamResponse:
        self.busy.add(connection)
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch_silence())
        try:
            return await connection.send(head, body, head_only)
        except TimeoutError:
            connection.release()
            raise UpstreamFailed(504, "timeout", f"upstream {self.base_url} did not answer in time") from None
        except (HttpParserError, UpstreamProtocolError) as exc:
            connection.release()
            raise self._failed("protocol", exc) from None
        except BaseException:
            connection.release()
            raise

    async def _connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: UpstreamConnection(self), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None)
        except TimeoutError:
            raise UpstreamFailed(504, "timeout", f"upstream {self.base_url} did not accept a connection in time") from None
        except OSError as exc:
            raise UpstreamFailed(502, "connect", f"upstream {self.base_url} refused or unreachable: {exc}") from None
        return connection

    async def _watch_silence(self) -> None:
        loop, timeout = asyncio.get_running_loop(), self._read_timeout
        while True:
            await asyncio.sleep(max(0.01, min(timeout / 4, 0.5)))
            now = loop.time()
            for connection in list(self.busy):
                connection.check_silence(now, timeout)

    def _failed(self, cause: str, exc: BaseException) -> UpstreamFailed:
        return UpstreamFailed(502, cause, f"upstream {self.base_url} failed: {exc.__class__.__name__}: {exc}")

    def keep(self, connection: UpstreamConnection) -> None:
        if len(self._idle) < MAX_IDLE:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()

    def forget(self, connection: UpstreamConnection) -> None:
        self.busy.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        self.close_idle()
        if self._watcher is not None:
            self._watcher.cancel()

    def close_idle(self, older_than: float = 0.0) -> None:
        """Close idle connections unused for ``older_than`` seconds (all of them with 0)."""
        cutoff = time.monotonic() - older_than
        for connection in [c for c in self._idle if c.idle_since <= cutoff]:
            self._idle.remove(connection)
            if connection.transport is not None:
                connection.transport.close()
