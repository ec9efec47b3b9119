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


# The hooks a tap may override, as bits: a hook no tap of an exchange overrides costs one test.
_HOOKS = ("upstream_request", "upstream_answered", "request_piece", "response_head", "response_piece", "ended")
UPSTREAM_REQUEST, UPSTREAM_ANSWERED, REQUEST_PIECE, RESPONSE_HEAD, RESPONSE_PIECE, ENDED = (1 << i for i in range(6))
_overrides: dict[type[ExchangeTap], int] = {}


def _hooks_of(tap: ExchangeTap) -> int:
    kind = type(tap)
    mask = _overrides.get(kind)
    if mask is None:
        mask = _overrides[kind] = sum(1 << i for i, hook in enumerate(_HOOKS)
                                      if getattr(kind, hook) is not getattr(ExchangeTap, hook))
    return mask


class Taps:
    """Every hook is a plain loop over a tuple (rebuilt when a tap is dropped), skipped when no
    tap overrides it: this runs several times per followed exchange, so no per-call copies, name
    lookups or argument packing."""

    __slots__ = ("_taps", "_hooks", "wants_bodies", "start")

    def __init__(self, taps: list[ExchangeTap], start: ExchangeStart) -> None:
        self.start = start  # its request id is the exchange's, from start to end
        self._taps = tuple(taps)
        wants, hooks = False, 0
        for tap in taps:  # a loop, not any(<generator>): this runs once per followed exchange
            wants = wants or tap.wants_bodies
            hooks |= _overrides.get(type(tap)) or _hooks_of(tap)
        self.wants_bodies = wants and bool(hooks & REQUEST_PIECE)
        self._hooks = hooks

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
        if self._hooks & UPSTREAM_REQUEST:
            for tap in self._taps:
                try:
                    tap.upstream_request(headers)
                except Exception:
                    self._failed(tap, "upstream_request")

    def upstream_answered(self, status: int | None, cause: str | None = None) -> None:
        if self._hooks & UPSTREAM_ANSWERED:
            for tap in self._taps:
                try:
                    tap.upstream_answered(status, cause)
                except Exception:
                    self._failed(tap, "upstream_answered")

    def response(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes = b"") -> None:
        """The response head as written to the client, with the body when it went in the same write."""
        if self._hooks & RESPONSE_HEAD:
            for tap in self._taps:
                try:
                    tap.response_head(status, headers)
                except Exception:
                    self._failed(tap, "response_head")
        self.response_piece(body)

    def response_piece(self, piece: bytes) -> None:
        if piece and self._hooks & RESPONSE_PIECE:
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
        if self._hooks & ENDED:
            for tap in self._taps:
                try:
                    tap.ended(end)
                except Exception:
                    self._failed(tap, "ended")
