"""A worker's windows, handed to the master a report at a time.

``DeltaWindows`` is the ``stats`` a worker's ``run_load`` fills: records go into per-window
accumulators on the master's grid, and ``take()`` returns what was added since the last
call (each record travels once; the master merges the pieces exactly). The worker keeps
only a running total of what it handed out (``overall``), the figure it reports as its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from brownout.load.distributed.protocol import ChecksTally
from brownout.records import RequestRecord
from brownout.steady.invariants import Invariants
from brownout.windows import WindowAccumulator, WindowGrid, WindowSeries


@dataclass
class ResponseTally:
    """One window's per-response checks, as the steady-state checker adds them."""

    responses: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    scores: list[float] = field(default_factory=list)

    def wire(self, index: int) -> ChecksTally:
        return ChecksTally(index=index, responses=self.responses, problems=dict(self.problems),
                           violations=dict(self.violations), scores=list(self.scores))


class DeltaWindows(WindowSeries):
    """Windows filled since the last ``take()``; ``windows()``/``total()`` of the base stay empty."""

    def __init__(self, grid: WindowGrid, invariants: Invariants | None = None) -> None:
        super().__init__(grid)
        self._delta: dict[int, WindowAccumulator] = {}
        self._checks: dict[int, ResponseTally] = {}
        self._invariants = invariants
        self.overall = WindowAccumulator(-1, 0.0, 0.0)

    def _acc(self, index: int) -> WindowAccumulator:
        acc = self._delta.get(index)
        if acc is None:
            acc = self._delta[index] = WindowAccumulator(index, *self.grid.bounds(index))
        return acc

    def add(self, record: RequestRecord) -> None:
        """Any record handed in counts (``run_load`` hands in normal traffic; the worker adds edge cases)."""
        index = self.grid.index_of(record.scheduled_at)
        self._acc(index).add(record)
        if (self._invariants is not None and record.edge_case is None and 200 <= record.status < 300
                and record.body is not None):
            check = self._invariants.check(record.body)
            tally = self._checks.get(index)
            if tally is None:
                tally = self._checks[index] = ResponseTally()
            tally.responses += 1
            if check.problem is not None:
                tally.problems[check.problem] += 1
            tally.violations.update(check.violations)
            tally.scores.extend(check.scores)

    def observe_in_flight(self, t: float, in_flight: int) -> None:
        self.in_flight = in_flight
        self._acc(self.grid.index_of(t)).observe_in_flight(in_flight)

    def take(self) -> tuple[list[WindowAccumulator], list[ChecksTally]]:
        windows = [self._delta[i] for i in sorted(self._delta)]
        checks = [self._checks[i].wire(i) for i in sorted(self._checks)]
        self._delta, self._checks = {}, {}
        for acc in windows:
            self.overall.merge(acc)
        return windows, checks
