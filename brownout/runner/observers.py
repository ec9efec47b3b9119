"""The runner's side of the observation seam: which observers a run has, and driving them.

``observers_for`` is the one list of observers (add a new one there). ``ObserverHub``
starts them at preflight (an error there stops the run, exit 4), then asks each about every
window in order, ``delay_s`` after the window ends, in its own task and within its
``timeout_s``, and feeds what it saw to the checker. The load generator never waits on an
observer; a window closes once ``ready`` says its observations are in or given up, and the
last windows of a phase wait for them (``settle``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from brownout.experiment.cost import CostSpec
from brownout.experiment.model import Experiment
from brownout.fleet.slis import sidecar_judge
from brownout.observe.cost_observer import CostObserver
from brownout.observe.prom_observer import PromProbeObserver
from brownout.observe.sidecars import SidecarReader
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.observations import RESERVED, ObservedWindow, Observation, WindowObserver
from brownout.steady.retries import retry_judges
from brownout.windows import WindowGrid
from faults.errors import BrownoutError

log = structlog.get_logger("brownout.runner.observers")
SLACK_S = 1.0  # beyond an observer's delay + timeout, for a busy event loop


def observers_for(experiment: Experiment, pidfiles: Sequence[Path] = ()) -> list[WindowObserver]:
    """Every observer the experiment asks for. ``pidfiles``: the processes of the stack under
    test as the caller knows them (``brownout demo``), measured for cost by default."""
    steady = experiment.steady_state
    observers: list[WindowObserver] = []
    admins = [a for p in experiment.proxies for a in p.admins]
    if admins or any(p.discover is not None for p in experiment.proxies):  # the fleet: set at preflight
        judges = [*retry_judges(steady.sla), *([sidecar_judge(steady.sidecars)] if steady.sidecars is not None else [])]
        observers.append(SidecarReader(admins, judges=judges))
    if steady.probes:
        observers.append(PromProbeObserver(steady.probes))
    cost = steady.cost if steady.cost is not None else (CostSpec() if pidfiles else None)
    if cost is not None:
        observers.append(CostObserver.from_spec(cost, pidfiles))
    return observers


class ObserverHub:
    """Drives a run's observers over the checker's window grid."""

    def __init__(self, observers: Sequence[WindowObserver], checker: SteadyStateChecker) -> None:
        names = [o.name for o in observers]
        clash = sorted({n for n in names if names.count(n) > 1} | (set(names) & RESERVED))
        if clash:
            raise ValueError(f"observer names must be unique and not a window key: {', '.join(clash)}")
        self.observers = tuple(observers)
        self.checker = checker
        self.grid: WindowGrid = checker.grid
        self._done: dict[str, int] = {o.name: -1 for o in observers}  # the last window each has answered
        self._tasks: list[asyncio.Task[None]] = []
        self._clock: Callable[[], float] = lambda: 0.0
        self._wall0 = 0.0
        self._started: list[WindowObserver] = []

    @property
    def longest_wait(self) -> float:
        """How long after a window ends its observations may still come (0 without observers)."""
        return max((o.delay_s + o.timeout_s for o in self.observers), default=0.0)

    async def start(self) -> None:
        """Preflight: every observer reaches what it reads; the first failure stops the run."""
        for observer in self.observers:
            await observer.start()
            self._started.append(observer)

    def begin(self, clock: Callable[[], float], wall0: float) -> None:
        """Run second 0 is now (``clock`` gives run seconds, ``wall0`` the same instant in Unix time)."""
        self._clock, self._wall0 = clock, wall0
        self._tasks = [asyncio.ensure_future(self._drive(o)) for o in self.observers]

    def _window(self, index: int) -> ObservedWindow:
        start, end = self.grid.bounds(index)
        return ObservedWindow(index, start, end, self._wall0 + start, self._wall0 + end)

    async def _drive(self, observer: WindowObserver) -> None:
        for index in itertools.count(max(0, self.grid.index_of(self._clock()))):
            window = self._window(index)
            wait = window.end + observer.delay_s - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self.checker.feed_observation(await self._observe(observer, window))
            self._done[observer.name] = index

    async def _observe(self, observer: WindowObserver, window: ObservedWindow) -> Observation:
        try:
            return await asyncio.wait_for(observer.observe(window), observer.timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            error = f"no answer within {observer.timeout_s:g}s"
        except BrownoutError as exc:
            error = str(exc)
        except Exception as exc:  # an observer's bug must not end the run: that window has no data
            error = f"{type(exc).__name__}: {exc}"
        log.warning("observation_failed", observer=observer.name, window=window.index, error=error)
        return Observation(observer.name, window.index, error=error)

    def ready(self, index: int) -> bool:
        """Whether window ``index`` may close: every observer answered it, or gave up long ago."""
        if all(done >= index for done in self._done.values()):
            return True
        overdue = self.grid.bounds(index)[1] + self.longest_wait + SLACK_S
        return self._clock() >= overdue

    async def settle(self, until: float) -> None:
        """Wait until every window ending by run second ``until`` is ready."""
        if not self.observers:
            return
        last = self.grid.index_of(until + 1e-9) - 1
        while last >= 0 and not self.ready(last):
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for observer in self._started:
            try:
                await observer.close()
            except Exception as exc:  # closing must not hide the run's outcome
                log.warning("observer_close_failed", observer=observer.name, error=str(exc))
        self._started.clear()
