"""down: the backend is dead, as clients see it (refused, reset, or 503 from a balancer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faults.base import Fault, Outcome, Reset, require
from faults.error import error_response
from faults.exchange import Exchange


@dataclass(frozen=True)
class DownFault(Fault):
    """Make the route look like a killed backend; nothing ever reaches upstream.

    ``mode``: ``refuse`` closes the connection without sending a byte (what a client of a
    dead process behind a proxy sees as "connection closed"), ``reset`` sends a TCP RST,
    ``503`` answers 503 Service Unavailable with a small JSON body, as a load balancer with
    no healthy backend does. Every request is refused, also on connections opened before
    the fault (keep-alive). ``retry_after_s``: with ``503``, add ``Retry-After: N``.
    """

    kind = "down"

    mode: Literal["refuse", "reset", "503", 503] = "refuse"
    retry_after_s: int | None = None

    def validate(self) -> None:
        require(self.retry_after_s is None or self.retry_after_s >= 0, "retry_after_s", f"must be >= 0, got {self.retry_after_s}")
        require(self.retry_after_s is None or str(self.mode) == "503", "retry_after_s", "only applies to mode '503'")

    async def on_request(self, ex: Exchange) -> Outcome:
        # Per request, not per connection: a client's open keep-alive connections see it too.
        ex.report(mode=str(self.mode))
        if self.mode == "refuse":
            return Reset(graceful=True)
        if self.mode == "reset":
            return Reset()
        ex.report(status=503)
        headers = (("Retry-After", str(self.retry_after_s)),) if self.retry_after_s is not None else ()
        return error_response(503, headers)
