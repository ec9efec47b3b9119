"""truncate: cut the response body short, with or without a matching Content-Length."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from faults.base import PROCEED, AbortExchange, Fault, Outcome, Reset, require
from faults.exchange import Exchange

_ABORT = Reset()  # a short read the client must notice: RST after what was sent


@dataclass(frozen=True)
class TruncateFault(Fault):
    """Cut the response body after ``after_bytes`` bytes or after a ``fraction`` of it.

    Give exactly one of ``after_bytes`` (a byte count) and ``fraction`` (0 to 1 of the body
    size, rounded down). ``content_length``: ``original`` keeps upstream's Content-Length,
    so the client sees a short read (the proxy closes the connection after the cut; on a
    chunked response the connection is aborted so the final chunk never comes);
    ``corrected`` sets Content-Length to the cut size (a chunked response just ends early),
    so the client sees a complete but short body. ``fraction`` uses upstream's
    Content-Length; without one (chunked) the body is buffered up to ``max_body_bytes`` to
    learn its size, and a longer body is cut at ``fraction`` of ``max_body_bytes``.
    """

    kind = "truncate"

    after_bytes: int | None = None
    fraction: float | None = None
    content_length: Literal["original", "corrected"] = "original"
    max_body_bytes: int = 8 * 1024 * 1024

    def validate(self) -> None:
        require((self.after_bytes is None) != (self.fraction is None), "after_bytes",
                "give exactly one of after_bytes and fraction")
        require(self.after_bytes is None or self.after_bytes >= 0, "after_bytes", f"must be >= 0, got {self.after_bytes}")
        require(self.fraction is None or 0.0 <= self.fraction <= 1.0, "fraction", f"must be between 0 and 1, got {self.fraction}")
        require(self.max_body_bytes >= 1, "max_body_bytes", f"must be >= 1, got {self.max_body_bytes}")

    def cut(self, size: int) -> int:
        """How many bytes of a ``size``-byte body the client gets."""
        if self.after_bytes is not None:
            return min(self.after_bytes, size)
        return math.floor(size * (self.fraction or 0.0))

    async def on_response(self, ex: Exchange) -> Outcome:
        declared = _content_length(ex)
        if declared is not None:
            kept = self.cut(declared)
            ex.report(bytes_kept=kept, bytes_cut=declared - kept)
            if self.content_length == "corrected":
                ex.response_headers["Content-Length"] = str(kept)
        return PROCEED

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        declared = _content_length(ex)
        if self.after_bytes is not None:
            limit: int | None = self.after_bytes
        elif declared is None:
            limit = None  # learn the size by buffering
        elif self.content_length == "corrected":
            limit = declared  # on_response already replaced it with the cut size
        else:
            limit = self.cut(declared)
        # A short read must stay visible: with no length declared, only an abort shows it.
        abort = self.content_length == "original" and declared is None
        if limit is None:
            return self._cut_buffered(ex, body, abort)
        return _cut_at(ex, body, limit, abort)

    async def _cut_buffered(self, ex: Exchange, body: AsyncIterator[bytes], abort: bool) -> AsyncIterator[bytes]:
        buffered = bytearray()
        async for chunk in body:
            buffered += chunk
            if len(buffered) >= self.max_body_bytes:
                del buffered[self.max_body_bytes:]
                break
        else:
            # The whole body is known: cut a fraction of its real size.
            limit = self.cut(len(buffered))
            if limit:
                yield bytes(buffered[:limit])
            ex.report(bytes_kept=limit, bytes_cut=len(buffered) - limit)
            if abort and limit < len(buffered):
                raise AbortExchange(_ABORT, "truncated chunked response")
            return
        limit = self.cut(self.max_body_bytes)
        if limit:
            yield bytes(buffered[:limit])
        ex.report(bytes_kept=limit)
        if abort:
            raise AbortExchange(_ABORT, "truncated chunked response")


async def _cut_at(ex: Exchange, body: AsyncIterator[bytes], limit: int, abort: bool) -> AsyncIterator[bytes]:
    left = limit
    async for chunk in body:
        if len(chunk) > left:
            if left:
                yield chunk[:left]
            if ex.details is None:  # (with a known length, on_response reported the cut already)
                ex.report(bytes_kept=limit)
            if abort:
                raise AbortExchange(_ABORT, f"truncated after {limit} bytes")
            return
        left -= len(chunk)
        yield chunk


def _content_length(ex: Exchange) -> int | None:
    value = ex.response_headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)
