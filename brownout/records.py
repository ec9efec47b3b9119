"""What the load generator hands the steady-state checker: one record per request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One scheduled request and what became of it.

    ``scheduled_at`` is seconds since the run started (monotonic). ``latency_s`` runs from
    the *scheduled* start to the last byte or the failure, so a stalled server cannot hide
    its latency. ``status`` is 0 for a transport failure (``error`` says which:
    ``connect``, ``timeout``, ``reset``, ``protocol``). A ``dropped`` request was never
    sent (in-flight cap reached or the client saturated).
    """

    scheduled_at: float
    latency_s: float
    status: int
    error: str | None = None
    bytes_received: int = 0
    edge_case: str | None = None
    dropped: bool = False
    body: bytes | None = None
    payload: int | None = None  # the index of the corpus entry the request was made from (None: none, or an edge case)

    @property
    def failed(self) -> bool:
        """Counts against the error rate: 5xx or a transport failure (not a drop)."""
        return not self.dropped and (self.status == 0 or self.status >= 500)
