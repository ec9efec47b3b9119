"""Recording on the data path: a route's recorder samples exchanges and captures them.

A route's ``recorder`` is set only while a recording is active on it, so a route that records
nothing pays one attribute test per request. Per exchange the recorder draws each active
recording's sample (one ``random()`` each; none when every recording takes every exchange); a
``Capture`` keeps references to the request head, the body pieces as they pass and the
response as the client got it, and at the end hands one tuple to the writer's queue. Nothing is
decoded, redacted or encoded here: the writer process does that (``proxy.recording.writer``).

The data path calls a capture directly, not through the observer seam (``proxy.taps``): a
recording follows every exchange it samples, and the seam's layers on a followed exchange
(``ExchangeStart``, ``Taps`` and its hook loops, ``ExchangeEnd``) cost the proxy about twice
what the capture itself does (``benchmarks/README.md``, Recording). A capture's hooks only keep
references; ``finish``, the one that does more, logs and counts a failure rather than raise it
into the exchange.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from proxy.recording.channel import RecordingMetrics, WriterChannel

log = structlog.get_logger("brownout.proxy")

_OVERHEAD = 256  # bytes a queued exchange costs beyond its bodies and headers (an estimate)
Body = bytes | AsyncIterator[bytes] | None
Headers = list[tuple[bytes, bytes]]
_NO_HEADERS: Headers = []  # never changed: the response head of an exchange that got none


@dataclass(eq=False)
class Sampler:
    """One active recording as the data path sees it: its id and its sample."""

    id: str
    sample: float
    rng: random.Random = field(default_factory=random.Random)


class Recorder:
    """One route's active recordings, as the data path asks them: ``capture`` this exchange?"""

    def __init__(self, route: str, channel: WriterChannel, metrics: RecordingMetrics, max_body: int) -> None:
        self.route = route
        self.channel = channel
        self.metrics = metrics
        self.max_body = max_body
        self.samplers = ()  # replaced whole on every change (copy on write)

    @property
    def samplers(self) -> tuple[Sampler, ...]:
        return self._samplers

    @samplers.setter
    def samplers(self, samplers: tuple[Sampler, ...]) -> None:
        self._samplers = samplers
        # Every recording takes every exchange (sample 1.0): the ids, decided once.
        self._everything = tuple(s.id for s in samplers) if all(s.sample >= 1.0 for s in samplers) else None

    def capture(self, method: str, target: bytes, headers: Headers) -> Capture | None:
        """A capture for an exchange that begins now, or None when no recording samples it."""
        ids = self._everything
        if ids is None:
            ids = ()
            for sampler in self._samplers:
                if sampler.sample >= 1.0 or sampler.rng.random() < sampler.sample:
                    ids += (sampler.id,)
            if not ids:
                return None
        return Capture(self, ids, method, target, headers)


class Capture:
    """One sampled exchange as the client saw it, kept by reference until ``finish``."""

    __slots__ = ("_recorder", "_ids", "_method", "_target", "_headers", "_started_at", "_request", "_response",
                 "_size", "_status", "_response_headers")

    def __init__(self, recorder: Recorder, ids: tuple[str, ...], method: str, target: bytes, headers: Headers) -> None:
        self._recorder = recorder
        self._ids = ids
        self._method, self._target, self._headers = method, target, headers
        self._started_at = time.time()
        self._request: list[bytes] = []
        self._response: list[bytes] = []
        self._size = 0  # body bytes kept so far; -1 once one body is over max_body (the exchange is skipped)
        self._status: int | None = None
        self._response_headers = _NO_HEADERS

    def request_body(self, body: Body) -> Body:
        """The client's body, unchanged, its pieces kept as they pass."""
        if body is None:
            return None
        if isinstance(body, bytes):
            self._keep(self._request, body)
            return body
        return self._tee(body)

    async def _tee(self, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for piece in pieces:
            self._keep(self._request, piece)
            yield piece

    def response(self, status: int, headers: Headers, body: bytes = b"") -> None:
        """The response head as written to the client, with the body when it went in the same write."""
        self._status, self._response_headers = status, headers
        self._keep(self._response, body)

    def response_piece(self, piece: bytes) -> None:
        self._keep(self._response, piece)

    def _keep(self, pieces: list[bytes], piece: bytes) -> None:
        if piece and self._size >= 0:
            self._size += len(piece)
            pieces.append(piece)
            if self._size > self._recorder.max_body:  # a whole exchange or none: it is skipped
                self._size = -1
                self._request.clear()
                self._response.clear()

    def finish(self, duration_s: float, faults: tuple[str, ...]) -> None:
        """The exchange ended: hand it to the writer's queue (``faults``: the ids of those that acted)."""
        recorder = self._recorder
        try:
            if self._size < 0:
                recorder.metrics.drop(recorder.route, "too_large", len(self._ids), self._ids)
                return
            # Nothing is copied here: the header lists and body pieces are not changed after this, and
            # the writer joins the pieces (a dropped exchange never costs a copy of its body).
            item = (self._ids, self._method, self._target.decode("latin-1"), self._headers, self._request,
                    self._started_at, faults, self._status, self._response_headers, self._response,
                    duration_s * 1000.0)
            recorder.channel.put(recorder.route, item, self._size + _OVERHEAD * (1 + len(self._headers) // 8))
        except Exception:  # recording never breaks forwarding
            log.exception("recording_capture_failed", route=recorder.route)
