"""What serving costs under stress: CPU-seconds (and joules where RAPL is readable) per interval.

Two CPU sources, one shape: ``await source.sample(at)`` gives the CPU-seconds used since its
previous call (``None`` on the first call, which only sets the start).

- ``PidfileCpu``: processes on this machine named by pidfiles, from ``/proc/<pid>/stat``
  (user + system time; their children are not counted). A process that restarts (a new pid,
  or the same pid with a new start time) starts a new count; the old one's CPU up to its last
  reading is kept, what it used after that reading is lost; a process first seen after the
  first reading counts from its own start.
- ``PromCpu``: ``process_cpu_seconds_total`` (or any CPU-seconds counter) of given jobs
  through PromQL: ``sum(increase(counter[interval]))`` at the interval's end, so counter
  resets (restarts) are handled by Prometheus. Ask one scrape interval after the end.

``CostMeter`` joins a CPU source and ``RaplEnergy`` into ``CostSample``s per interval;
``per_thousand`` turns a phase's sums into cost per 1,000 successful predictions.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from brownout.experiment.cost import CostSpec
from brownout.experiment.probes import PrometheusRef
from brownout.observe.probes import client_for
from brownout.observe.promql import PrometheusClient
from brownout.observe.rapl import RaplEnergy

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcCpu:
    cpu_seconds: float   # utime + stime
    start_ticks: int     # since boot: with the pid, the process's identity


def read_proc_cpu(pid: int, proc: Path = PROC) -> ProcCpu | None:
    """CPU time of one process (not its children) from ``/proc/<pid>/stat``; None if gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:  # fields[0] is the state (field 3): utime is field 14, stime 15, starttime 22
        return ProcCpu((int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[19]))
    except (IndexError, ValueError):
        return None


@dataclass
class _Tracked:
    pid: int = 0
    start_ticks: int = -1
    last_cpu: float = 0.0   # the current process's CPU at its last reading
    carried: float = 0.0    # CPU of earlier processes behind this pidfile, up to their last reading

    @property
    def total(self) -> float:
        return self.carried + self.last_cpu


class CpuSource(Protocol):
    notes: list[str]

    async def sample(self, at: float) -> float | None: ...


@dataclass
class PidfileCpu:
    """Cumulative CPU-seconds of the processes behind ``pidfiles``, across restarts."""

    pidfiles: Sequence[Path]
    proc: Path = PROC
    notes: list[str] = field(default_factory=list)   # what the last reading could not see
    restarts: int = 0
    _tracked: dict[Path, _Tracked] = field(default_factory=dict, init=False)
    _previous: float | None = field(default=None, init=False)

    def total(self) -> float:
        """A monotonic count of CPU-seconds (only differences between readings mean anything)."""
        self.notes = []
        for pidfile in self.pidfiles:
            tracked = self._tracked.setdefault(pidfile, _Tracked())
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                self.notes.append(f"{pidfile}: no readable pid")
                continue
            now = read_proc_cpu(pid, self.proc)
            if now is None:
                self.notes.append(f"{pidfile}: process {pid} is not running")
                continue
            if (pid, now.start_ticks) != (tracked.pid, tracked.start_ticks):  # first seen, or restarted
                if tracked.start_ticks >= 0:
                    self.restarts += 1
                tracked.carried += tracked.last_cpu
                tracked.pid, tracked.start_ticks = pid, now.start_ticks
            tracked.last_cpu = now.cpu_seconds
        return sum(t.total for t in self._tracked.values())

    async def sample(self, at: float) -> float | None:
        """CPU-seconds since the previous sample (``at`` is ignored: /proc is read now)."""
        total = self.total()
        previous, self._previous = self._previous, total
        return None if previous is None else max(0.0, total - previous)


def _with_jobs(selector: str, jobs: Sequence[str]) -> str:
    if not jobs:
        return selector
    matcher = "job=~" + json.dumps("|".join(re.escape(j) for j in jobs))
    if selector.endswith("}"):
        inner = selector[selector.index("{") + 1:-1].strip()
        return f"{selector[:selector.index('{')]}{{{inner + ', ' if inner else ''}{matcher}}}"
    return f"{selector}{{{matcher}}}"


@dataclass
class PromCpu:
    """CPU-seconds of Prometheus jobs between samples, from a CPU-seconds counter."""

    client: PrometheusClient
    selector: str = "process_cpu_seconds_total"
    jobs: Sequence[str] = ()
    notes: list[str] = field(default_factory=list)
    _previous: float | None = field(default=None, init=False)

    def query(self, seconds: float) -> str:
        return f"sum(increase({_with_jobs(self.selector, self.jobs)}[{max(1, round(seconds * 1000))}ms]))"

    async def between(self, start: float, end: float) -> float | None:
        """CPU-seconds from ``start`` to ``end``; None (with a note) when Prometheus has no data."""
        result = await self.client.query(self.query(end - start), at=end)
        self.notes = []
        if not result.samples:
            self.notes.append(f"no data for {self.query(end - start)} at {end:.3f} (too short a window for "
                              f"two scrapes, or no such job)")
            return None
        return max(0.0, result.samples[0].value)

    async def sample(self, at: float) -> float | None:
        previous, self._previous = self._previous, at
        return None if previous is None else await self.between(previous, at)


@dataclass(frozen=True)
class CostSample:
    """One interval's cost; ``joules`` is None when energy is absent (``energy_absent`` says why)."""

    start: float
    end: float
    cpu_seconds: float | None
    joules: float | None
    energy_absent: str | None = None
    notes: tuple[str, ...] = ()


class CostMeter:
    """CPU (and energy) per interval: ``await start()``, then ``await sample()`` at each interval's end."""

    def __init__(self, cpu: CpuSource, energy: RaplEnergy | None = None) -> None:
        self.cpu = cpu
        self.energy = energy if energy is not None else RaplEnergy()
        self._start: float | None = None
        self._joules: float | None = None

    async def start(self, at: float | None = None) -> None:
        self._start = time.time() if at is None else at
        await self.cpu.sample(self._start)
        self._joules = self.energy.read()

    async def sample(self, at: float | None = None) -> CostSample:
        if self._start is None:
            raise RuntimeError("CostMeter.start() first")
        end = time.time() if at is None else at
        cpu = await self.cpu.sample(end)
        joules_now = self.energy.read()
        joules = None if joules_now is None or self._joules is None else joules_now - self._joules
        sample = CostSample(start=self._start, end=end, cpu_seconds=cpu, joules=joules,
                            energy_absent=self.energy.absent_reason, notes=tuple(self.cpu.notes))
        self._start, self._joules = end, joules_now
        return sample


def per_thousand(amount: float | None, successes: int) -> float | None:
    """Cost per 1,000 successful predictions; None when nothing succeeded or nothing was measured."""
    if amount is None or successes <= 0:
        return None
    return amount * 1000.0 / successes


def cpu_source(spec: CostSpec, default_pidfiles: Sequence[Path] = ()) -> CpuSource:
    """The CPU source a ``steady_state.cost`` names (pidfiles default to ``default_pidfiles``).

    A PromQL source owns a client: close it with ``await source.client.close()``.
    """
    if spec.prometheus is None:
        return PidfileCpu(list(spec.pidfiles or default_pidfiles))
    ref = PrometheusRef(prometheus=spec.prometheus, auth=spec.auth, timeout=spec.timeout)
    return PromCpu(client_for(ref), selector=spec.query, jobs=spec.jobs)
