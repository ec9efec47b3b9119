"""throttle: limit body bandwidth, or dribble a few bytes at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from faults.base import Fault, Hook, require
from faults.exchange import Exchange

# Bandwidth mode sends about ten pieces a second by default: smooth, yet few wake-ups.
_PIECES_PER_S = 10
_MAX_DEFAULT_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ThrottleFault(Fault):
    """Slow a body down: a bandwidth cap, or a dribble of small pieces at intervals.

    Give exactly one of ``bytes_per_s`` (bandwidth: the body is re-chunked and each piece
    takes its transmission time on a link of that speed; time spent waiting for upstream
    earns no credit, as on a real slow link) and ``interval_ms``
    (dribble: ``chunk_bytes`` bytes, then a pause of ``interval_ms``, and so on).
    ``chunk_bytes``: piece size; default about a tenth of a second's worth of bandwidth
    (at most 64 KiB), or 1 byte when dribbling. ``direction``: ``response`` (default),
    ``request`` (slow upload to upstream) or ``both``.
    """

    kind = "throttle"

    bytes_per_s: float | None = None
    interval_ms: float | None = None
    chunk_bytes: int | None = None
    direction: Literal["response", "request", "both"] = "response"

    def validate(self) -> None:
        require((self.bytes_per_s is None) != (self.interval_ms is None), "bytes_per_s",
                "give exactly one of bytes_per_s and interval_ms")
        require(self.bytes_per_s is None or self.bytes_per_s > 0, "bytes_per_s", f"must be > 0, got {self.bytes_per_s}")
        require(self.interval_ms is None or self.interval_ms >= 0, "interval_ms", f"must be >= 0, got {self.interval_ms}")
        require(self.chunk_bytes is None or self.chunk_bytes >= 1, "chunk_bytes", f"must be >= 1, got {self.chunk_bytes}")

    @property
    def piece_bytes(self) -> int:
        if self.chunk_bytes is not None:
            return self.chunk_bytes
        if self.bytes_per_s is not None:
            return max(1, min(_MAX_DEFAULT_CHUNK, int(self.bytes_per_s / _PIECES_PER_S)))
        return 1

    def hooks(self) -> frozenset[Hook]:
        return frozenset(
            ({Hook.WRAP_REQUEST_BODY} if self.direction in ("request", "both") else set())
            | ({Hook.WRAP_RESPONSE_BODY} if self.direction in ("response", "both") else set()))

    def wrap_request_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return self._pace(ex, body) if self.direction in ("request", "both") else body

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return self._pace(ex, body) if self.direction in ("response", "both") else body

    async def _pace(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        size = self.piece_bytes
        if self.bytes_per_s is not None:
            ex.report(bytes_per_s=self.bytes_per_s, chunk_bytes=size)
        else:
            ex.report(interval_ms=self.interval_ms or 0.0, chunk_bytes=size)
        busy_until = ex.now()  # when the simulated link finishes sending what it was given
        sent = 0
        async for chunk in body:
            for offset in range(0, len(chunk), size):
                piece = chunk[offset:offset + size]
                if self.bytes_per_s is not None:
                    now = ex.now()
                    busy_until = max(busy_until, now) + len(piece) / self.bytes_per_s
                    await ex.sleep(busy_until - now)
                elif sent:
                    # Dribble: the first piece goes at once, then one per interval.
                    await ex.sleep((self.interval_ms or 0.0) / 1000.0)
                sent += len(piece)
                yield piece
