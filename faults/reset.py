"""reset: drop the connection with an RST, before any response or after N body bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from faults.base import PROCEED, Exchange, Fault, Outcome, Reset, require
from faults.errors import FaultAborted

_RESET = Reset()


@dataclass(frozen=True)
class ResetFault(Fault):
    """Reset the client connection (TCP RST) instead of answering, or mid-body.

    Without ``after_bytes`` the client gets no response at all. ``phase``: ``connection``
    (default: nothing reaches upstream), ``request`` (same, once the request head is read) or
    ``response`` (upstream processed the request, so its side effects happened, but the
    answer is lost). ``after_bytes``: send the response head and exactly this many body
    bytes, then reset; upstream's Content-Length is kept, so the client sees a short read.
    A body shorter than ``after_bytes`` is sent whole and the connection is still reset
    (a chunked body then lacks its final chunk). ``phase`` must be omitted or ``response``
    with ``after_bytes``.
    """

    kind = "reset"

    after_bytes: int | None = None
    phase: Literal["connection", "request", "response"] | None = None

    def validate(self) -> None:
        require(self.after_bytes is None or self.after_bytes >= 0, "after_bytes", f"must be >= 0, got {self.after_bytes}")
        require(self.after_bytes is None or self.phase in (None, "response"), "phase",
                "must be omitted or 'response' when after_bytes is given")

    @property
    def _head_phase(self) -> str | None:
        """The phase that resets without a response, or None when the body stream does."""
        return None if self.after_bytes is not None else (self.phase or "connection")

    async def on_connection(self, ex: Exchange) -> Outcome:
        return _RESET if self._head_phase == "connection" else PROCEED

    async def on_request(self, ex: Exchange) -> Outcome:
        return _RESET if self._head_phase == "request" else PROCEED

    async def on_response(self, ex: Exchange) -> Outcome:
        return _RESET if self._head_phase == "response" else PROCEED

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        if self.after_bytes is None:
            return body
        return _reset_after(body, self.after_bytes)


async def _reset_after(body: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    left = limit
    async for chunk in body:
        if len(chunk) >= left:
            if left:
                yield chunk[:left]
            break
        left -= len(chunk)
        yield chunk
    raise FaultAborted(f"reset after {limit} response body bytes")
