"""hang: hold the request without answering, until the client gives up or a deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faults.base import PROCEED, Exchange, Fault, Outcome, Reset, require
from faults.error import error_response

# Without a deadline, sleep in slices: ex.sleep is cancellable, so a client that goes away
# or a fault that is removed ends the hang at once.
_FOREVER_SLICE_S = 3600.0


@dataclass(frozen=True)
class HangFault(Fault):
    """Hold the request and send nothing, as a stuck backend does.

    ``deadline_ms``: how long to hold; omitted, the hang lasts until the client gives up (or
    the fault is removed). ``then``: what happens at the deadline: ``reset`` (RST, default),
    ``504`` (a JSON 504 Gateway Timeout) or ``proceed`` (forward as usual: a long stall).
    ``phase``: ``request`` holds before upstream is contacted; ``response`` holds after
    upstream answered (the request was processed, the client never hears).
    """

    kind = "hang"

    deadline_ms: float | None = None
    then: Literal["reset", "504", 504, "proceed"] = "reset"
    phase: Literal["request", "response"] = "request"

    def validate(self) -> None:
        require(self.deadline_ms is None or self.deadline_ms >= 0, "deadline_ms", f"must be >= 0, got {self.deadline_ms}")

    async def hold(self, ex: Exchange) -> Outcome:
        if self.deadline_ms is None:
            while True:
                await ex.sleep(_FOREVER_SLICE_S)
        await ex.sleep(self.deadline_ms / 1000.0)
        if self.then == "reset":
            return Reset()
        if self.then == "proceed":
            return PROCEED
        return error_response(504)

    async def on_request(self, ex: Exchange) -> Outcome:
        return await self.hold(ex) if self.phase == "request" else PROCEED

    async def on_response(self, ex: Exchange) -> Outcome:
        return await self.hold(ex) if self.phase == "response" else PROCEED
