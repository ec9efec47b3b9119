"""The observation seam: measurements become verdicts and checks, and the hub drives observers
without letting a window close before its observations are in (or given up)."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import pytest

from brownout.experiment.steady import SteadyState
from brownout.observe.prom_observer import measurements
from brownout.experiment.probes import PromProbe
from brownout.observe.probes import ProbeVerdict, SeriesVerdict
from brownout.runner.observers import ObserverHub
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.observations import Measurement, ObservedWindow, Observation
from brownout.steady.verdicts import build_checks
from faults.errors import Unreachable


def verdict_of(m: Measurement, phase: str = "method"):  # type: ignore[no-untyped-def]
    return m.verdict(phase=phase, window=3, start=15.0, end=20.0, active_faults=["error@feature-store"])


@pytest.mark.parametrize("comparison, value, bound, ok", [
    ("<=", 0.05, 0.05, True), ("<=", 0.06, 0.05, False), ("<", 0.05, 0.05, False), (">=", 3, 3, True),
    (">", 3, 3, False), ("==", 2, 2, True), ("==", 2.5, 2, False), ("<=", math.nan, 1, False),
])
def test_a_measurement_is_judged_against_its_bound(comparison: str, value: float, bound: float, ok: bool) -> None:
    v = verdict_of(Measurement("fallback-rate", value, bound, comparison))  # type: ignore[arg-type]
    assert v.ok is ok and v.sli == "fallback-rate" and v.comparison == comparison


def test_a_verdict_names_window_sli_subject_bound_value_and_faults() -> None:
    v = verdict_of(Measurement("fallback-rate", 0.31, 0.05, "<=", subject='{job="model-api"}',
                               labels=(("job", "model-api"),)))
    assert v.message() == ('window 3 (15s–20s, method): fallback-rate {job="model-api"} = 0.31, bound <= 0.05: '
                           'violated; faults active: error@feature-store')
    assert v.as_dict()["subject"] == '{job="model-api"}' and v.name == 'fallback-rate {job="model-api"}'


def test_no_data_fails_or_is_only_counted() -> None:
    failing = verdict_of(Measurement("p", None, 1, "<=", on_empty="fail", note="no data: up returned no series"))
    assert not failing.ok and failing.no_data and "no data (no data: up returned no series)" in failing.message()
    skipped = verdict_of(Measurement("p", None, 1, "<=", on_empty="skip"))
    assert skipped.ok and skipped.no_data


def test_probe_results_become_one_measurement_per_series_and_term() -> None:
    probe = PromProbe.model_validate({"name": "depth", "prometheus": "http://h:9090", "query": "q",
                                      "bound": {">": 0, "<=": 10}, "phases": ["method"]})
    series = (SeriesVerdict('q{job="a"}', (("job", "a"),), 4.0, True), SeriesVerdict('q{job="b"}', (("job", "b"),), 12.0, False))
    ms = measurements(probe, ProbeVerdict("depth", "q", "> 0 and <= 10", 1.0, "violated", series))
    assert [(m.subject, m.comparison, m.holds()) for m in ms] == [
        ('q{job="a"}', ">", True), ('q{job="a"}', "<=", True), ('q{job="b"}', ">", True), ('q{job="b"}', "<=", False)]
    assert all(m.phases == ("method",) and not m.applies_to("baseline") for m in ms)
    [empty] = measurements(probe, ProbeVerdict("depth", "q", "", 1.0, "no_data", ()))
    assert empty.value is None and empty.on_empty == "fail" and not empty.holds()


def test_the_checker_judges_observations_and_checks_count_windows() -> None:
    checker = SteadyStateChecker(SteadyState(window=1.0))
    for index, values in enumerate([(1.0, 2.0), (1.0, 9.0), (9.0, 9.0)]):
        checker.feed_observation(Observation("probes", index, tuple(
            Measurement("depth", v, 5, "<=", subject=f"{{job=\"{job}\"}}", phases=("method",))
            for job, v in zip("ab", values))))
    results = [checker.close_window(i, phase="method") for i in range(3)]
    assert [r.ok for r in results] == [True, False, False]
    [check] = build_checks(checker.verdicts)
    assert check.windows == 3 and len(check.failures) == 3 and check.failed_windows == 2
    assert check.message().startswith("method: depth <= 5: violated in 2 of 3 window(s)")
    # Phases not named are not judged; an observation for a closed window is late.
    checker.feed_observation(Observation("probes", 3, (Measurement("depth", 99, 5, "<=", phases=("method",)),)))
    assert checker.close_window(3, phase="recovery").verdicts == ()
    checker.feed_observation(Observation("probes", 1, (Measurement("depth", 1, 5, "<="),)))
    assert checker.late_observations == 1


def test_a_check_failing_for_no_data_says_so() -> None:
    checker = SteadyStateChecker(SteadyState(window=1.0))
    for i in range(2):
        checker.feed_observation(Observation("probes", i, (Measurement("p", None, 1, "<=", on_empty="fail"),)))
        checker.close_window(i, phase="baseline")
    [check] = build_checks(checker.verdicts)
    assert not check.ok and not check.judged and "no data in any of 2 window(s)" in check.message()


@dataclass
class FakeObserver:
    name: str = "fake"
    delay_s: float = 0.05
    timeout_s: float = 1.0
    hang: set[int] = field(default_factory=set)   # windows it never answers (until its timeout)
    broken: set[int] = field(default_factory=set)  # windows it raises on
    seen: list[tuple[int, float]] = field(default_factory=list)
    fail_start: bool = False
    closed: bool = False

    async def start(self) -> None:
        if self.fail_start:
            raise Unreachable("fake: not there")

    async def observe(self, window: ObservedWindow) -> Observation:
        self.seen.append((window.index, time.time() - window.wall_end))
        if window.index in self.hang:
            await asyncio.sleep(60)
        if window.index in self.broken:
            raise RuntimeError("observer bug")
        return Observation(self.name, window.index, (Measurement("fake", float(window.index), 10, "<="),))

    async def close(self) -> None:
        self.closed = True


async def test_the_hub_asks_after_the_delay_and_gates_closing() -> None:
    checker = SteadyStateChecker(SteadyState(window=0.2))
    observer = FakeObserver(delay_s=0.15, timeout_s=0.3, hang={2}, broken={3})
    hub = ObserverHub([observer], checker)
    await hub.start()
    t0 = time.monotonic()
    clock = lambda: time.monotonic() - t0  # noqa: E731
    hub.begin(clock, time.time())
    try:
        assert not hub.ready(0)  # window 0 ends at 0.2s; its observation comes at 0.35s at the earliest
        await hub.settle(1.0)  # windows 0-4 end by 1.0s: every one answered, timed out or failed
        assert all(hub.ready(i) for i in range(5))
        assert [i for i, _ in observer.seen[:5]] == [0, 1, 2, 3, 4]
        assert all(late >= 0.15 - 0.01 for _, late in observer.seen)  # never before end + delay
        closed = checker.close_due(clock(), grace=0.0, phase_of=lambda s, e: "baseline", faults_of=lambda s, e: [],
                                   ready=hub.ready)
        by_index = {r.index: r for r in closed}
        assert [v.value for v in by_index[0].verdicts] == [0.0] and [v.value for v in by_index[4].verdicts] == [4.0]
        assert by_index[2].verdicts == () and by_index[2].notes == ("fake: no answer within 0.3s",)
        assert by_index[3].notes == ("fake: RuntimeError: observer bug",)
    finally:
        await hub.close()
    assert observer.closed


async def test_a_failing_observer_stops_the_run_at_preflight_and_names_clash() -> None:
    checker = SteadyStateChecker(SteadyState(window=1.0))
    good, bad = FakeObserver("good"), FakeObserver("bad", fail_start=True)
    hub = ObserverHub([good, bad], checker)
    with pytest.raises(Unreachable, match="fake: not there"):
        await hub.start()
    await hub.close()
    assert good.closed and not bad.closed  # what started is closed
    with pytest.raises(ValueError, match="stats"):
        ObserverHub([FakeObserver("stats")], checker)
    with pytest.raises(ValueError, match="twice"):
        ObserverHub([FakeObserver("twice"), FakeObserver("twice")], checker)
