"""Recording on the data path: an observer per route that samples exchanges and taps them.

The observer is in a route's observer list only while a recording is active on that route,
so a route that records nothing pays nothing. Per exchange it draws each active
recording's sample (one ``random()`` each); a tap for a sampled exchange keeps references to
the request head, the body pieces as they pass and the response as the client got it, and at
the end hands one tuple to the writer's queue. Nothing is decoded, redacted or encoded here:
the writer process does that (``proxy.recording.writer``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from proxy.observers import ExchangeEnd, ExchangeObserver, ExchangeStart, ExchangeTap
from proxy.recording.channel import RecordingMetrics, WriterChannel

_OVERHEAD = 256  # bytes a queued exchange costs beyond its bodies and headers (an estimate)


@dataclass(eq=False)
class Sampler:
    """One active recording as the data path sees it: its id and its sample."""

    id: str
    sample: float
    rng: random.Random = field(default_factory=random.Random)


class RecordingObserver(ExchangeObserver):
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

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        ids = self._everything
        if ids is None:
            ids = ()
            for sampler in self._samplers:
                if sampler.sample >= 1.0 or sampler.rng.random() < sampler.sample:
                    ids += (sampler.id,)
        return _Tap(self, ids, start) if ids else None


class _Tap(ExchangeTap):
    wants_bodies = True
    __slots__ = ("_observer", "_ids", "_start", "_request", "_response", "_size", "_status", "_headers")

    def __init__(self, observer: RecordingObserver, ids: tuple[str, ...], start: ExchangeStart) -> None:
        self._observer = observer
        self._ids = ids
        self._start = start
        self._request: list[bytes] = []
        self._response: list[bytes] = []
        self._size = 0  # body bytes kept so far; -1 once one body is over max_body (the exchange is skipped)
        self._status: int | None = None
        self._headers: Sequence[tuple[bytes, bytes]] = ()

    def request_piece(self, piece: bytes) -> None:
        if self._size >= 0:
            self._size += len(piece)
            self._request.append(piece)
            if self._size > self._observer.max_body:
                self._too_large()

    def response_head(self, status: int, headers: Sequence[tuple[bytes, bytes]]) -> None:
        self._status, self._headers = status, headers

    def response_piece(self, piece: bytes) -> None:
        if self._size >= 0:
            self._size += len(piece)
            self._response.append(piece)
            if self._size > self._observer.max_body:
                self._too_large()

    def _too_large(self) -> None:
        """A whole exchange or none: past ``max_body`` nothing more is kept, and it is skipped."""
        self._size = -1
        self._request.clear()
        self._response.clear()

    def ended(self, end: ExchangeEnd) -> None:
        observer = self._observer
        if self._size < 0:
            observer.metrics.drop(observer.route, "too_large", len(self._ids), self._ids)
            return
        start = self._start
        faults = tuple(e.fault_id for e in end.effects if e.hook is not None) if end.effects else ()
        # Nothing is copied here: the header lists and body pieces are not changed after this, and
        # the writer joins the pieces (a dropped exchange never costs a copy of its body).
        item = (self._ids, start.method, start.target, start.headers, self._request, start.started_at, faults,
                self._status, self._headers, self._response, end.duration_s * 1000.0)
        observer.channel.put(observer.route, item, self._size + _OVERHEAD * (1 + len(start.headers) // 8))
