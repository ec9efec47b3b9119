"""reset: drop the connection with an RST, at accept, before any response, or after N body bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from faults.base import PROCEED, AbortExchange, Fault, Hook, Outcome, Reset, require
from faults.exchange import Exchange

_RESET = Reset()


@dataclass(frozen=True)
class ResetFault(Fault):
    """Reset the client connection (TCP RST) instead of answering, or mid-body.

    Without ``after_bytes`` the client gets no response at all. ``phase``: ``request``
    (default: once the request head is read; nothing reaches upstream), ``connection`` (as
    soon as the connection is accepted, before the client sends anything: then ``match``
    takes only ``probability`` and counts, which count connections) or ``response``
    (upstream processed the request, so its side effects happened, but the answer is lost).
    ``after_bytes``: send the response head and exactly this many body bytes, then reset;
    upstream's Content-Length is kept, so the client sees a short read. A body shorter than
    ``after_bytes`` is sent whole and the connection is still reset (a chunked body then
    lacks its final chunk). ``phase`` must be omitted or ``response`` with ``after_bytes``.
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
        return None if self.after_bytes is not None else (self.phase or "request")

    def hooks(self) -> frozenset[Hook]:
        phase = self._head_phase
        if phase is None:
            return frozenset({Hook.WRAP_RESPONSE_BODY})
        return frozenset({Hook.ON_CONNECTION if phase == "connection" else
                          Hook.ON_REQUEST if phase == "request" else Hook.ON_RESPONSE})

    def _reset_at(self, phase: str, ex: Exchange) -> Outcome:
        if self._head_phase != phase:
            return PROCEED
        ex.report(phase=phase)
        return _RESET

    async def on_connection(self, ex: Exchange) -> Outcome:
        return self._reset_at("connection", ex)

    async def on_request(self, ex: Exchange) -> Outcome:
        return self._reset_at("request", ex)

    async def on_response(self, ex: Exchange) -> Outcome:
        return self._reset_at("response", ex)

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        if self.after_bytes is None:
            return body
        return _reset_after(body, self.after_bytes, ex)


async def _reset_after(body: AsyncIterator[bytes], limit: int, ex: Exchange) -> AsyncIterator[bytes]:
    left = limit
    async for chunk in body:
        if len(chunk) >= left:
            if left:
                yield chunk[:left]
            left = 0
            break
        left -= len(chunk)
        yield chunk
    ex.report(phase="response", after_bytes=limit - left)
    raise AbortExchange(_RESET, f"reset after {limit - left} response body bytes")
