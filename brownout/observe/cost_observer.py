"""The ``cost`` observer: CPU-seconds (and joules) per window, per 1,000 successful predictions.

Per window it reads the CPU the serving stack used (``steady_state.cost``: processes by
pidfile, read at the window's end, or a CPU-seconds counter through PromQL, asked one scrape
interval after it) and this machine's RAPL energy; once the window's load figures are final
(``settle``) the cost is divided by the 2xx answers the load generator got in it. A phase
pools its windows: the CPU of the windows measured over their successes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from brownout.experiment.cost import CostSpec
from brownout.observe.cost import PidfileCpu, PromCpu, cpu_source, per_thousand
from brownout.observe.prom_observer import DEFAULT_DELAY_S
from brownout.observe.rapl import RaplEnergy
from brownout.steady.observations import Detail, Measurement, ObservedWindow, Observation
from brownout.windows import WindowStats
from faults.errors import InvalidInput, QueryFailed, Unreachable


@dataclass(frozen=True)
class CostWindow:
    """The cost of a window (or, merged, a phase). Amounts None are not measured (``notes``,
    ``energy_absent`` say why); successes count only the windows whose amount was measured."""

    source: str
    cpu_seconds: float | None
    joules: float | None
    energy_absent: str | None = None
    notes: tuple[str, ...] = ()
    cpu_successes: int = 0
    joule_successes: int = 0
    windows: int = 1
    windows_without_cpu: int = 0

    def settle(self, stats: WindowStats) -> CostWindow:
        ok = stats.status_2xx
        return replace(self, cpu_successes=ok if self.cpu_seconds is not None else 0,
                       joule_successes=ok if self.joules is not None else 0,
                       windows_without_cpu=int(self.cpu_seconds is None))

    def measurements(self) -> tuple[Measurement, ...]:
        return ()

    def merge(self, other: Detail) -> CostWindow:
        assert isinstance(other, CostWindow)

        def add(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else a + b

        return CostWindow(
            source=self.source, cpu_seconds=add(self.cpu_seconds, other.cpu_seconds),
            joules=add(self.joules, other.joules), energy_absent=self.energy_absent or other.energy_absent,
            notes=tuple(dict.fromkeys(self.notes + other.notes)),
            cpu_successes=self.cpu_successes + other.cpu_successes,
            joule_successes=self.joule_successes + other.joule_successes,
            windows=self.windows + other.windows,
            windows_without_cpu=self.windows_without_cpu + other.windows_without_cpu,
        )

    @property
    def cpu_per_1k(self) -> float | None:
        """CPU-seconds per 1,000 successful predictions."""
        return per_thousand(self.cpu_seconds, self.cpu_successes)

    @property
    def joules_per_1k(self) -> float | None:
        return per_thousand(self.joules, self.joule_successes)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "cpu_seconds": self.cpu_seconds, "successes": self.cpu_successes,
                "cpu_seconds_per_1k": self.cpu_per_1k, "joules": self.joules,
                "joules_per_1k": self.joules_per_1k, "energy_absent": self.energy_absent,
                "windows": self.windows, "windows_without_cpu": self.windows_without_cpu,
                "notes": list(self.notes)}


class CostObserver:
    name = "cost"

    def __init__(self, cpu: PidfileCpu | PromCpu, energy: RaplEnergy | None = None, *, source: str,
                 delay_s: float = 0.0, timeout_s: float = 5.0) -> None:
        self.cpu = cpu
        self.energy = energy if energy is not None else RaplEnergy()
        self.source = source
        self.delay_s = delay_s
        self.timeout_s = timeout_s
        self._joules: float | None = None

    @classmethod
    def from_spec(cls, spec: CostSpec, default_pidfiles: Sequence[Path] = ()) -> CostObserver:
        cpu = cpu_source(spec, default_pidfiles)
        if isinstance(cpu, PidfileCpu):
            return cls(cpu, source="pidfiles: " + ", ".join(str(p) for p in cpu.pidfiles))
        assert isinstance(cpu, PromCpu)
        jobs = f" of jobs {', '.join(spec.jobs)}" if spec.jobs else ""
        return cls(cpu, source=f"prometheus {spec.prometheus}: {spec.query}{jobs}", delay_s=DEFAULT_DELAY_S,
                   timeout_s=spec.timeout + 1.0)

    async def start(self) -> None:
        if isinstance(self.cpu, PidfileCpu):
            if not self.cpu.pidfiles:
                raise InvalidInput("name the processes to measure: 'pidfiles: [...]' or 'prometheus' and 'query' "
                                   "(brownout demo measures its own processes)", "steady_state.cost")
            await self.cpu.sample(0.0)  # the first reading: the start of window 0
            if self.cpu.notes and len(self.cpu.notes) == len(self.cpu.pidfiles):
                raise Unreachable("steady_state.cost: no process to measure: " + "; ".join(self.cpu.notes))
        else:
            try:
                await self.cpu.client.query(self.cpu.query(60))  # a bad selector or a dead Prometheus stops the run
            except QueryFailed as exc:
                raise QueryFailed(f"steady_state.cost: {exc} (query: {self.cpu.query(60)})") from None
            interval = await self.cpu.client.scrape_interval()
            self.delay_s = interval if interval is not None else DEFAULT_DELAY_S
        self._joules = self.energy.read()

    async def observe(self, window: ObservedWindow) -> Observation:
        if isinstance(self.cpu, PidfileCpu):
            cpu = await self.cpu.sample(window.wall_end)
        else:
            cpu = await self.cpu.between(window.wall_start, window.wall_end)
        now = self.energy.read()
        joules = None if now is None or self._joules is None else now - self._joules
        self._joules = now
        detail = CostWindow(self.source, cpu, joules, self.energy.absent_reason, tuple(self.cpu.notes))
        return Observation(self.name, window.index, detail=detail)

    async def close(self) -> None:
        if isinstance(self.cpu, PromCpu):
            await self.cpu.client.close()
