"""What the data path tells those who watch it: one record per fault per exchange, one per exchange.

An http route holds a list of ``ExchangeObserver`` (empty by default: then nothing is built
for an exchange no fault touched). Recording and tracing plug in here. Observers are called
synchronously on the data path, so they must be quick (queue, don't do I/O) and must not
raise (an exception is logged and the exchange carries on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from faults import Hook
from faults.base import Detail


@dataclass(frozen=True, slots=True)
class FaultEffect:
    """What one fault did to one exchange (or, for a connection-phase fault, one connection).

    ``hook``: where it first reported (None: selected, but it reported nothing, e.g. a stream
    fault on a response that is not an event stream). ``at_s``: seconds from the start of the
    exchange to that report. ``details``: what it reported (``delay_ms``, ``status``, ``bytes_cut``...).
    """

    fault_id: str
    kind: str
    route: str
    request_id: str
    hook: Hook | None
    at_s: float
    details: Mapping[str, Detail]


@dataclass(frozen=True, slots=True)
class ExchangeEnd:
    """One exchange as it ended: ``status`` is what the client got (499: reset, or the client left)."""

    route: str
    request_id: str
    method: str
    path: str
    status: int
    started_at: float  # wall clock (epoch seconds)
    duration_s: float
    effects: tuple[FaultEffect, ...]


class ExchangeObserver(Protocol):
    def fault_effect(self, effect: FaultEffect) -> None:
        """A fault's effect is known (at the end of its exchange, or when a connection fault acted)."""

    def exchange_ended(self, end: ExchangeEnd) -> None:
        """An exchange ended (every exchange of the route, faulted or not)."""
