"""What the live view shows during a run: counters since the last window, phase, faults, SLA."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from brownout.histogram import Histogram
from brownout.liveview import LiveState, LiveView
from brownout.records import RequestRecord
from brownout.steady.checker import WindowResult


@dataclass
class Progress:
    view: LiveView
    total_s: float
    started: float = field(default_factory=time.monotonic)
    phase: str = "baseline"
    completed: int = 0
    errors: int = 0
    dropped: int = 0
    rate_target: float = 0.0
    recent: Histogram = field(default_factory=Histogram)
    sla: str = "no window closed yet"
    faults: tuple[str, ...] = ()

    def record(self, record: RequestRecord) -> None:
        if record.dropped:
            self.dropped += 1
            return
        self.completed += 1
        self.errors += record.failed
        self.recent.record(record.latency_s)

    def state(self) -> LiveState:
        elapsed = time.monotonic() - self.started
        faults = ", ".join(self.faults) or "none"
        return LiveState(
            elapsed_s=elapsed, total_s=self.total_s, target_rate=self.rate_target,
            achieved_rate=self.completed / elapsed if elapsed > 0 else 0.0,
            p50_ms=self.recent.percentile(50) * 1000, p99_ms=self.recent.percentile(99) * 1000,
            completed=self.completed, errors=self.errors, dropped=self.dropped, in_flight=0,
            extra=(f"phase    {self.phase}", f"faults   {faults}", f"SLA      {self.sla}"),
        )

    def tick(self) -> None:
        self.view.update(self.state())

    def window(self, result: WindowResult) -> None:
        broken = [v for v in result.verdicts if not v.ok]
        self.sla = "held" if not broken else "; ".join(f"{v.sli} {v.value} (bound {v.bound})" for v in broken)
        self.sla = f"window {result.index} ({result.phase}): {self.sla}"
        self.phase = result.phase
        self.view.window(self.state())
        self.recent = Histogram()

    def close(self) -> None:
        self.view.close(self.state())
