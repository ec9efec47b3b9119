"""The taps of one exchange: the observers that asked to follow it, each call isolated.

``Taps.open`` asks every observer of the route; when none returns a tap, the exchange carries
``None`` and the data path does nothing more for it (one attribute test per step). A tap that
raises is logged once and dropped from its exchange: watching never breaks forwarding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence

import structlog

from proxy.observers import ExchangeEnd, ExchangeObserver, ExchangeStart, ExchangeTap

log = structlog.get_logger("brownout.proxy")

Body = bytes | AsyncIterator[bytes] | None


class Taps:
    """Every hook is a plain loop over a tuple (rebuilt when a tap is dropped): this runs several
    times per followed exchange, so no per-call copies, name lookups or argument packing."""

    __slots__ = ("_taps", "wants_bodies", "start")

    def __init__(self, taps: list[ExchangeTap], start: ExchangeStart) -> None:
        self.start = start  # its request id is the exchange's, from start to end
        self._taps = tuple(taps)
        wants = False
        for tap in taps:  # a loop, not any(<generator>): this runs once per followed exchange
            wants = wants or tap.wants_bodies
        self.wants_bodies = wants

    @classmethod
    def open(cls, observers: Iterable[ExchangeObserver], start: ExchangeStart) -> Taps | None:
        taps = []
        for observer in observers:
            try:
                tap = observer.exchange_started(start)
            except Exception:
                log.exception("observer_failed", route=start.route, observer=type(observer).__name__)
                continue
            if tap is not None:
                taps.append(tap)
        return cls(taps, start) if taps else None

    def _failed(self, tap: ExchangeTap, hook: str) -> None:
        self._taps = tuple(t for t in self._taps if t is not tap)
        log.exception("tap_failed", tap=type(tap).__name__, hook=hook)

    def upstream_request(self, headers: list[tuple[bytes, bytes]]) -> None:
        for tap in self._taps:
            try:
                tap.upstream_request(headers)
            except Exception:
                self._failed(tap, "upstream_request")

    def upstream_answered(self, status: int | None, cause: str | None = None) -> None:
        for tap in self._taps:
            try:
                tap.upstream_answered(status, cause)
            except Exception:
                self._failed(tap, "upstream_answered")

    def response_head(self, status: int, headers: Sequence[tuple[bytes, bytes]]) -> None:
        for tap in self._taps:
            try:
                tap.response_head(status, headers)
            except Exception:
                self._failed(tap, "response_head")

    def response_piece(self, piece: bytes) -> None:
        if piece:
            for tap in self._taps:
                try:
                    tap.response_piece(piece)
                except Exception:
                    self._failed(tap, "response_piece")

    def request_body(self, body: Body) -> Body:
        """The client's body, unchanged, with its pieces shown to the taps as they pass."""
        if body is None or not self.wants_bodies:
            return body
        if isinstance(body, bytes):
            self._request_piece(body)
            return body
        return self._tee(body)

    def _request_piece(self, piece: bytes) -> None:
        if not piece:
            return
        for tap in self._taps:
            if tap.wants_bodies:
                try:
                    tap.request_piece(piece)
                except Exception:
                    self._failed(tap, "request_piece")

    async def _tee(self, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for piece in pieces:
            self._request_piece(piece)
            yield piece

    def ended(self, end: ExchangeEnd) -> None:
        for tap in self._taps:
            try:
                tap.ended(end)
            except Exception:
                self._failed(tap, "ended")
