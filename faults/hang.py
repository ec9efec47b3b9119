"""hang: hold the request without answering, until the client gives up or a deadline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from faults.base import PROCEED, Fault, Hook, Outcome, Reset, require
from faults.error import error_response
from faults.exchange import Exchange



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

    def hooks(self) -> frozenset[Hook]:
        return frozenset({Hook.ON_REQUEST if self.phase == "request" else Hook.ON_RESPONSE})

    async def hold(self, ex: Exchange) -> Outcome:
        # ex.sleep ends early when the client goes away (cancelled) or the fault is removed.
        started = ex.now()
        ex.report(deadline_ms=self.deadline_ms if self.deadline_ms is not None else -1, then=str(self.then))
        try:
            await ex.sleep(math.inf if self.deadline_ms is None else self.deadline_ms / 1000.0)
        finally:
            ex.report(held_ms=round((ex.now() - started) * 1000.0, 3))
        if self.then == "reset":
            return Reset()
        if self.then == "proceed":
            return PROCEED
        return error_response(504)

    async def on_request(self, ex: Exchange) -> Outcome:
        return await self.hold(ex) if self.phase == "request" else PROCEED

    async def on_response(self, ex: Exchange) -> Outcome:
        return await self.hold(ex) if self.phase == "response" else PROCEED
