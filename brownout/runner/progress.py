"""What the live view shows during a run: the run so far, each closed window's own figures, phase, faults, SLA.

The clock is the run's (run second 0 is the start of the baseline), and ``total_s`` its
planned length: baseline, method and the recovery watch after it. A window's line shows
that window's statistics as the checker closed them, never counters since the last line
(windows can close together: the baseline's all close at its end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from brownout.histogram import Histogram
from brownout.liveview import LiveState, LiveView, window_state
from brownout.records import RequestRecord
from brownout.steady.checker import WindowResult


def _monotonic_since_creation() -> Callable[[], float]:
    started = time.monotonic()
    return lambda: time.monotonic() - started


@dataclass
class Progress:
    view: LiveView
    total_s: float
    clock: Callable[[], float] = field(default_factory=_monotonic_since_creation)  # run seconds
    phase: str = "baseline"
    completed: int = 0
    errors: int = 0
    dropped: int = 0
    in_flight: int = 0  # requests on the wire now, as the load generator last said
    rate_target: float = 0.0
    recent: Histogram = field(default_factory=Histogram)  # answers since the last window closed (TTY view)
    sla: str = "no window closed yet"
    faults: tuple[str, ...] = ()

    def record(self, record: RequestRecord) -> None:
        if record.dropped:
            self.dropped += 1
            return
        self.completed += 1
        self.errors += record.failed
        self.recent.record(record.latency_s)

    def _extra(self) -> tuple[str, ...]:
        faults = ", ".join(self.faults) or "none"
        return (f"phase    {self.phase}", f"faults   {faults}", f"SLA      {self.sla}")

    def state(self) -> LiveState:
        elapsed = self.clock()
        recent = self.recent
        return LiveState(
            elapsed_s=elapsed, total_s=self.total_s, target_rate=self.rate_target,
            achieved_rate=self.completed / elapsed if elapsed > 0 else 0.0,
            p50_ms=recent.percentile(50) * 1000 if recent.count else None,
            p99_ms=recent.percentile(99) * 1000 if recent.count else None,
            completed=self.completed, errors=self.errors, dropped=self.dropped, in_flight=self.in_flight,
            extra=self._extra(),
        )

    def tick(self) -> None:
        self.view.update(self.state())

    def window(self, result: WindowResult) -> None:
        broken = [v for v in result.verdicts if not v.ok]
        held = "held" if not broken else "; ".join(
            f"{v.name} {'no data' if v.value is None else format(v.value, '.4g')} (bound {v.bound:g})" for v in broken)
        self.sla = f"window {result.index} ({result.phase}): {held}"
        self.phase = result.phase
        # The faults of the window's own span, not those active as its line is printed.
        faults = ", ".join(result.active_faults) or "none"
        extra = (f"phase    {result.phase}", f"faults   {faults}", f"SLA      {self.sla}")
        self.view.window(window_state(result.stats, elapsed_s=self.clock(), total_s=self.total_s,
                                      target_rate=self.rate_target, in_flight=self.in_flight, extra=extra))
        self.recent = Histogram()

    def close(self) -> None:
        self.view.close(self.state())
