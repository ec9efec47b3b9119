"""Observations of a window from outside the load generator: the one seam for PromQL probes,
sidecar counters, cost, and whatever else watches the system under test per window.

An observer (``WindowObserver``) is started at preflight and asked about window i once,
``delay_s`` after the window ends (its own delay: one scrape interval for Prometheus, none
for a sidecar's ``/metrics``), within ``timeout_s``. It answers an ``Observation``:

- ``measurements``: values judged against bounds, turned by the checker into the window's
  ``Verdict``s, like every other SLI (same checks, journal, summary, JUnit, HTML);
- ``detail``: what the journal keeps of the window under the observer's name
  (``windows[i].<source>``), pooled per phase (``phases[j].<source>``). ``settle`` binds it to
  the window's final load figures (cost per 1,000 successes needs the window's 2xx count)
  and may add measurements that need them.

The runner (``brownout.runner.observers``) drives observers in their own tasks (the load
generator never waits on them) and the checker closes a window only when its observations
are in or timed out.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from brownout.steady.verdicts import Comparison, Verdict
from brownout.windows import WindowStats

OnEmpty = Literal["fail", "skip"]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda v, b: v <= b + 1e-12, ">=": lambda v, b: v >= b - 1e-12,
    "<": operator.lt, ">": operator.gt, "==": operator.eq,
}
# Keys a window or a phase already has in the journal: an observer's detail cannot take them.
RESERVED = frozenset({"index", "phase", "start", "end", "active_faults", "ok", "stats", "quality", "verdicts",
                      "abort", "streams", "windows", "held", "notes"})


@dataclass(frozen=True)
class ObservedWindow:
    """The window an observer is asked about: run seconds and the same instants as Unix time."""

    index: int
    start: float
    end: float
    wall_start: float
    wall_end: float


@dataclass(frozen=True)
class Measurement:
    """One value to judge: ``value <comparison> bound``; ``value`` None is no data.

    ``on_empty``: no data fails the window (``fail``) or is only counted as no data (``skip``).
    ``phases``: the phases it is judged in (None: all).
    """

    sli: str
    value: float | None
    bound: float
    comparison: Comparison
    subject: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    on_empty: OnEmpty = "skip"
    phases: tuple[str, ...] | None = None
    note: str | None = None

    def applies_to(self, phase: str) -> bool:
        return self.phases is None or phase in self.phases

    def holds(self) -> bool:
        """NaN holds nothing; no data holds unless ``on_empty`` is ``fail``."""
        if self.value is None:
            return self.on_empty != "fail"
        return not math.isnan(self.value) and _COMPARE[self.comparison](self.value, self.bound)

    def verdict(self, *, phase: str, window: int, start: float, end: float,
                active_faults: Sequence[str] = ()) -> Verdict:
        return Verdict(phase, window, start, end, self.sli, self.bound, self.value, self.holds(), self.comparison,
                       tuple(active_faults), subject=self.subject, note=self.note)


@runtime_checkable
class Detail(Protocol):
    """What the journal keeps of a window (or, merged, of a phase) for one observer."""

    def settle(self, stats: WindowStats) -> Detail:
        """The same, bound to the window's final load figures (called once, at close)."""
        ...

    def measurements(self) -> tuple[Measurement, ...]:
        """Measurements that needed the load figures (after ``settle``; often none)."""
        ...

    def merge(self, other: Detail) -> Detail:
        """Two settled windows (or phases) as one: a phase pools its windows."""
        ...

    def as_dict(self) -> dict[str, Any]:
        ...


@dataclass(frozen=True)
class Observation:
    """What one observer saw of one window; ``error`` says why it saw nothing (then logged)."""

    source: str
    window: int
    measurements: tuple[Measurement, ...] = ()
    detail: Detail | None = None
    error: str | None = None


class WindowObserver(Protocol):
    """Watches the system under test per window, from outside the load generator."""

    name: str          # the journal key of its details (windows[i].<name>); unique in a run
    delay_s: float     # ask for window i this long after it ends
    timeout_s: float   # an observation not in by then is given up (the window closes without it)

    async def start(self) -> None:
        """Preflight: reach what it reads once; a ``BrownoutError`` stops the run (exit 4)."""
        ...

    async def observe(self, window: ObservedWindow) -> Observation:
        """Called once per window, in window order, never concurrently for the same observer."""
        ...

    async def close(self) -> None:
        ...
