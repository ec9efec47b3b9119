"""Writing an http route's answers to the client: upstream's response (whole or streamed), or one of our own.

The framing follows what was decided upstream of here: a declared length is never exceeded
(the rest would corrupt the next response on the connection), a shorter body than declared
ends with a close (a truncating fault asked for it), and a body of unknown length goes
chunked, or close-delimited to an HTTP/1.0 client. The exchange's taps and its recording
capture see the head and the body bytes exactly as they are written.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import structlog

from faults import BodyEdit, Hook
from proxy import h1
from proxy.h1_server import ClientConnection, IncomingRequest
from proxy.injection import Injection
from proxy.metrics import ProxyMetrics
from proxy.taps import Taps
from proxy.upstream_pool import UpstreamProtocolError, UpstreamResponse

if TYPE_CHECKING:
    from proxy.recording.capture import Capture

log = structlog.get_logger("brownout.proxy")

MEASURE_MAX = 8 * 1024 * 1024  # rewritten bodies up to this size get an exact Content-Length


def _shown(request: IncomingRequest, status: int, headers: h1.RawHeaders, body: bytes = b"") -> None:
    """The response head as written, with the body when it went in the same write, to whoever follows."""
    if request.taps is not None:
        request.taps.response(status, headers, body)
    if request.capture is not None:
        request.capture.response(status, headers, body)


class ResponseWriter:
    def __init__(self, route: str, metrics: ProxyMetrics, *, fault_header: bool) -> None:
        self.route = route
        self._metrics = metrics
        self._fault_header = fault_header

    async def send(self, request: IncomingRequest, client: ClientConnection, upstream: UpstreamResponse,
                             status: int, phrase: bytes, headers: h1.RawHeaders, length: int | None,
                             upstream_length: int | None, injection: Injection | None) -> None:
        self._mark(headers, injection)
        if request.raw_method == b"HEAD" or h1.has_no_body(status):
            client.write(h1.response_head(status, phrase, self._connection_header(request, client, headers, True)))
            if request.taps is not None or request.capture is not None:
                _shown(request, status, headers)
            return
        pieces: AsyncIterator[bytes] | None = None
        if injection is not None and injection.uses(Hook.WRAP_RESPONSE_BODY):
            edit = injection.edit(Hook.WRAP_RESPONSE_BODY)
            pieces = injection.wrap(Hook.WRAP_RESPONSE_BODY, upstream.body.pieces())
            if edit is not BodyEdit.NONE:  # new bytes: upstream's length no longer applies
                headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
                length = None
            if edit is BodyEdit.REWRITE and upstream_length is not None and upstream_length <= MEASURE_MAX:
                # A whole new document of bounded size: measure it, so the client gets an exact length.
                try:
                    whole = b"".join([piece async for piece in pieces])
                except (OSError, TimeoutError, UpstreamProtocolError) as exc:
                    self._upstream_broke(client, exc)
                    return
                headers.append((b"Content-Length", b"%d" % len(whole)))
                client.write(h1.response_head(status, phrase, self._connection_header(request, client, headers, True))
                             + whole)
                if request.taps is not None or request.capture is not None:
                    _shown(request, status, headers, whole)
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
            if request.taps is not None or request.capture is not None:
                _shown(request, status, headers, data)
            if length is not None and len(data) < length:
                client.abort(rst=False)  # shorter than declared: a truncating fault asked for this
            return
        client.write(head)
        if request.taps is not None or request.capture is not None:
            _shown(request, status, headers)
        await self._stream(client, pieces or upstream.body.pieces(), chunked, length, request.taps, request.capture)

    async def _stream(self, client: ClientConnection, pieces: AsyncIterator[bytes], chunked: bool,
                      length: int | None, taps: Taps | None, capture: Capture | None) -> None:
        sent = 0
        try:
            async for piece in pieces:
                if length is not None and sent + len(piece) > length:
                    piece = piece[:length - sent]  # never more than declared (see above)
                if piece:
                    sent += len(piece)
                    client.write(h1.chunk(piece) if chunked else piece)
                    if taps is not None:
                        taps.response_piece(piece)
                    if capture is not None:
                        capture.response_piece(piece)
                    await client.drain()
        except (OSError, TimeoutError, UpstreamProtocolError) as exc:
            self._upstream_broke(client, exc)
            return
        if length is not None and sent < length:
            client.abort(rst=False)  # a short read, as a truncating fault asked
        elif chunked:
            client.write(h1.LAST_CHUNK)

    def _upstream_broke(self, client: ClientConnection, exc: BaseException) -> None:
        if client.lost:
            return  # the client went away: nothing to tell it
        # The upstream died mid-stream: break the client's response rather than hang or lie.
        self._metrics.upstream_errors.labels(self.route, "midstream").inc()
        log.warning("upstream_broke_midstream", route=self.route, error=repr(exc))
        client.abort(rst=False)

    def _connection_header(self, request: IncomingRequest, client: ClientConnection, headers: h1.RawHeaders,
                           framed: bool) -> h1.RawHeaders:
        if not framed or client.closing or client.must_close or not request.keep_alive:
            client.must_close = True
            headers.append((b"Connection", b"close"))
        elif request.http10:
            headers.append((b"Connection", b"keep-alive"))
        return headers

    def respond(self, request: IncomingRequest, client: ClientConnection, status: int, body: bytes,
                 headers: h1.RawHeaders, injection: Injection | None = None) -> int:
        headers = [(n, v) for n, v in headers if n.lower() not in h1.FRAMING]
        headers.append((b"Content-Length", b"%d" % len(body)))
        self._mark(headers, injection)
        if not request.body.finished:
            client.must_close = True  # answered before the body was read: no clean boundary for the next request
        self._connection_header(request, client, headers, True)
        head = h1.response_head(status, h1.reason(status), headers)
        bodyless = request.raw_method == b"HEAD" or h1.has_no_body(status)
        client.write(head if bodyless else head + body)
        if request.taps is not None or request.capture is not None:
            _shown(request, status, headers, b"" if bodyless else body)
        return status

    def error(self, request: IncomingRequest, client: ClientConnection, status: int, cause: str, detail: str) -> int:
        body = json.dumps({"error": detail, "route": self.route, "cause": cause}).encode()
        return self.respond(request, client, status, body, [(b"Content-Type", b"application/json")])

    def _mark(self, headers: h1.RawHeaders, injection: Injection | None) -> None:
        if self._fault_header and injection is not None:
            headers.append((b"x-brownout-fault", injection.ids.encode()))
