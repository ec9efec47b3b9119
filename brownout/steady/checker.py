"""The steady-state checker: records and golden probes in, window results and verdicts out.

The runner feeds records (``feed``), golden probe results (``feed_probe``), probed
streams (``feed_stream``) and what observers outside the load generator saw of a window
(``feed_observation``: ``brownout.steady.observations``) as they arrive, and
closes windows in order once their answers are in (``close_due`` with a grace of the
request timeout and, when observers watch, once ``ready`` says their observations are in;
or ``close_window``). It says which phase a window belongs to and which
faults were active; the checker knows nothing of the timeline. Records of a window already
closed are counted in ``late`` and otherwise ignored. Load generated elsewhere (the
``locust`` engine's workers) comes as window accumulators instead (``merge_window``).

Drift (PSI) compares against the scores of the windows closed as ``baseline``. A window's
PSI is taken over the most recent scores of its phase (up to ``DRIFT_POOL``, this window's
and the phase's previous ones), and only with ``MIN_DRIFT_SAMPLES`` or more: PSI over a few
dozen scores is noise. Phases pool their windows: one histogram, all probes, a reservoir
of scores.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brownout.experiment.model import AbortWhen
from brownout.experiment.steady import SteadyState
from brownout.records import RequestRecord
from brownout.steady.golden import (
    ProbeOutcome,
    ProbeResult,
    agreement_rate,
    judge_probe,
)
from brownout.steady.invariants import Invariants, ResponseCheck
from brownout.steady.observations import Detail, Observation
from brownout.steady.quality import (
    DRIFT_POOL,
    MIN_DRIFT_SAMPLES,
    PsiReference,
    QualityStats,
    Reservoir,
    brier,
    precision_recall,
)
from brownout.steady.replay import ReplayJudge, ReplayTally
from brownout.steady.streams import StreamSample, StreamStats, stream_stats
from brownout.steady.verdicts import (
    BASELINE,
    RECOVERY,
    Check,
    RecoveryResult,
    Verdict,
    build_checks,
    evaluate_abort,
    evaluate_sla,
    evaluate_streams,
)
from brownout.windows import WindowAccumulator, WindowGrid, WindowStats
from faults.jsonpath import compile_path

STREAM_POOL = 5000  # a phase keeps its most recent probed streams for its summary


@dataclass(frozen=True)
class WindowResult:
    phase: str
    stats: WindowStats
    quality: QualityStats
    active_faults: tuple[str, ...]
    verdicts: tuple[Verdict, ...]
    abort: tuple[Verdict, ...]  # safeguards breached: the runner stops the run
    streams: StreamStats | None = None  # None: the experiment probes no streams
    observed: tuple[tuple[str, Detail], ...] = ()  # observers' details, by observer name
    notes: tuple[str, ...] = ()  # what observers could not see of this window

    @property
    def index(self) -> int:
        return self.stats.index

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "phase": self.phase, "start": self.stats.start, "end": self.stats.end,
                "active_faults": list(self.active_faults), "ok": self.ok, "stats": self.stats.as_dict(),
                "quality": self.quality.as_dict(), "verdicts": [v.as_dict() for v in self.verdicts],
                "abort": [v.as_dict() for v in self.abort],
                "streams": self.streams.as_dict() if self.streams is not None else None,
                **{name: detail.as_dict() for name, detail in self.observed}, "notes": list(self.notes)}


@dataclass(frozen=True)
class PhaseResult:
    """A phase's windows merged: one set of statistics over the whole phase."""

    phase: str
    windows: int
    held: bool
    stats: WindowStats
    quality: QualityStats
    streams: StreamStats | None = None
    observed: tuple[tuple[str, Detail], ...] = ()  # observers' details, the phase's windows merged
    verdicts: tuple[Verdict, ...] = ()  # measured over the whole phase (window None); checks count windows

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "windows": self.windows, "held": self.held,
                "stats": self.stats.as_dict(), "quality": self.quality.as_dict(),
                "streams": self.streams.as_dict() if self.streams is not None else None,
                "verdicts": [v.as_dict() for v in self.verdicts],
                **{name: detail.as_dict() for name, detail in self.observed}}


@dataclass
class _Quality:
    responses: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    scores: list[float] = field(default_factory=list)
    outcomes: list[ProbeOutcome] = field(default_factory=list)
    reservoir: Reservoir = field(default_factory=Reservoir)
    violations: Counter[str] = field(default_factory=Counter)
    echo_checked: int = 0
    echo_mismatches: int = 0
    streams: list[StreamSample] = field(default_factory=list)
    replay: ReplayTally = field(default_factory=ReplayTally)

    def add(self, check: ResponseCheck) -> None:
        self.responses += 1
        if check.problem is not None:
            self.problems[check.problem] += 1
        self.violations.update(check.violations)
        self.scores.extend(check.scores)

    def merge(self, other: _Quality) -> None:
        """Pool a window into a phase (scores into the phase's reservoir)."""
        self.responses += other.responses
        self.problems.update(other.problems)
        self.reservoir.extend(other.scores)
        self.scores = self.reservoir.values
        self.outcomes += other.outcomes
        self.violations.update(other.violations)
        self.echo_checked += other.echo_checked
        self.echo_mismatches += other.echo_mismatches
        self.streams = (self.streams + other.streams)[-STREAM_POOL:]
        self.replay.merge(other.replay)

    def finish(self, reference: PsiReference | None, drift_sample: Sequence[float] | None = None) -> QualityStats:
        labelled = [(o.score, o.label) for o in self.outcomes if o.label is not None and o.score is not None]
        scores, labels = [s for s, _ in labelled], [y for _, y in labelled]
        precision, recall = precision_recall(scores, labels) if labelled else (None, None)
        sample = self.scores if drift_sample is None else drift_sample
        drift = reference.psi(sample) if reference is not None and len(sample) >= MIN_DRIFT_SAMPLES else None
        return QualityStats(
            responses=self.responses, invalid=sum(self.problems.values()),
            problems=tuple(self.problems.most_common()), scores=self.reservoir.seen or len(self.scores),
            probes=len(self.outcomes),
            agreement=agreement_rate(self.outcomes), psi=drift, precision=precision, recall=recall,
            brier=brier(scores, labels), violations=tuple(sorted(self.violations.items())),
            echo_checked=self.echo_checked, echo_mismatches=self.echo_mismatches,
            replay_compared=self.replay.compared, replay_agreed=self.replay.agreed,
            replay_disagreements=tuple(self.replay.kinds.most_common()),
            replay_examples=tuple(str(d) for d in self.replay.examples),
        )


class SteadyStateChecker:
    def __init__(self, steady: SteadyState, abort_when: AbortWhen | None = None, *, origin: float = 0.0,
                 replay: ReplayJudge | None = None) -> None:
        self.steady = steady
        self.abort_when = abort_when
        self.grid = WindowGrid(steady.window, origin)
        predictions = steady.predictions
        self._predictions = predictions
        self._score = compile_path(predictions.score) if predictions and predictions.score else None
        self._invariants = Invariants.from_predictions(predictions)
        self._replay = replay  # compares answers with those recorded for the same requests
        self._open: dict[int, tuple[WindowAccumulator, _Quality]] = {}
        self._next = 0  # the lowest window index not closed yet
        self._baseline_scores = Reservoir()
        self._reference: PsiReference | None = None
        self._phases: dict[str, tuple[WindowAccumulator, _Quality]] = {}
        self._drift_pool: deque[float] = deque(maxlen=DRIFT_POOL)
        self._drift_phase: str | None = None
        self._observed: dict[int, list[Observation]] = {}
        self._phase_observed: dict[str, dict[str, Detail]] = {}
        self.late = 0
        self.late_observations = 0
        self.results: list[WindowResult] = []

    # -- input

    def _window(self, t: float) -> tuple[WindowAccumulator, _Quality] | None:
        index = self.grid.index_of(t)
        if index < self._next:
            self.late += 1
            return None
        return self._slot(index)

    def _slot(self, index: int) -> tuple[WindowAccumulator, _Quality]:
        if index not in self._open:
            self._open[index] = (WindowAccumulator(index, *self.grid.bounds(index)), _Quality())
        return self._open[index]

    def feed(self, record: RequestRecord) -> None:
        slot = self._window(record.scheduled_at)
        if slot is None:
            return
        slot[0].add(record)
        # Prediction checks apply to answers to normal requests; edge cases expect 4xx.
        if (self._predictions is not None and record.edge_case is None and 200 <= record.status < 300
                and record.body is not None):
            slot[1].add(self._invariants.check(record.body))
        if self._replay is not None and (outcome := self._replay.judge(record)) is not False:
            slot[1].replay.add(outcome)  # type: ignore[arg-type]

    def merge_window(self, acc: WindowAccumulator, *, responses: int = 0, problems: Mapping[str, int] | None = None,
                     violations: Mapping[str, int] | None = None, scores: Sequence[float] = ()) -> bool:
        """Merge window ``acc.index`` gathered elsewhere (a load worker) into the open window, exactly.

        ``responses``, ``problems``, ``violations`` and ``scores`` are the per-response checks of its
        answers, as ``feed`` adds them. A window already closed counts its records in ``late``
        (returns False).
        """
        if acc.index < self._next:
            self.late += acc.sent + acc.dropped
            return False
        window, quality = self._slot(acc.index)
        window.merge(acc)
        window.start, window.end = self.grid.bounds(acc.index)  # the grid's span, whatever acc's clock said
        quality.responses += responses
        quality.problems.update(problems or {})
        quality.violations.update(violations or {})
        quality.scores.extend(scores)
        return True

    def observe_in_flight(self, t: float, in_flight: int) -> None:
        """The load generator's requests on the wire at run second ``t`` (a window keeps the most)."""
        index = self.grid.index_of(t)
        if index >= self._next:  # a closed window's sample is dropped: a sample, not a late record
            self._slot(index)[0].observe_in_flight(in_flight)

    def feed_probe(self, probe: ProbeResult) -> ProbeOutcome | None:
        if self._score is None or self._predictions is None:
            return None
        slot = self._window(probe.at)
        outcome = judge_probe(probe, self._score, self._predictions.tolerance)
        if slot is not None:
            slot[1].outcomes.append(outcome)
            if self._invariants.checks_echo and 200 <= probe.status < 300:
                slot[1].echo_checked += 1
                slot[1].echo_mismatches += self._invariants.echo_problem(probe.case.body, probe.body) is not None
        return outcome

    def feed_stream(self, sample: StreamSample) -> None:
        """A probed stream, in the window it was sent in."""
        slot = self._window(sample.at)
        if slot is not None:
            slot[1].streams.append(sample)

    def feed_observation(self, observation: Observation) -> None:
        """What an observer saw of a window; one for a window already closed is counted and dropped."""
        if observation.window < self._next:
            self.late_observations += 1
            return
        self._observed.setdefault(observation.window, []).append(observation)

    # -- windows

    def close_window(self, index: int, *, phase: str, active_faults: Sequence[str] = ()) -> WindowResult:
        """Close window ``index`` (and, empty, any skipped before it); return its result."""
        while self._next < index:
            self.close_window(self._next, phase=phase, active_faults=active_faults)
        acc, quality = self._open.pop(index, None) or (WindowAccumulator(index, *self.grid.bounds(index)), _Quality())
        self._next = max(self._next, index + 1)
        if phase != BASELINE and self._reference is None and len(self._baseline_scores) >= MIN_DRIFT_SAMPLES:
            self._reference = PsiReference.from_baseline(self._baseline_scores.values)
        if phase != self._drift_phase:
            self._drift_pool.clear()
            self._drift_phase = phase
        self._drift_pool.extend(quality.scores)
        stats = acc.stats()
        qstats = quality.finish(self._reference if phase != BASELINE else None, list(self._drift_pool))
        if phase == BASELINE:
            self._baseline_scores.extend(quality.scores)
        self._pool(phase, acc, quality)
        faults = tuple(active_faults)
        verdicts = evaluate_sla(stats, qstats, self.steady.sla, self._predictions, phase=phase,
                                active_faults=faults, window=index)
        sstats = None
        if self.steady.streams is not None:
            sstats = stream_stats(quality.streams, self.steady.streams.sla)
            verdicts += evaluate_streams(stats, sstats, self.steady.streams.sla, phase=phase, active_faults=faults,
                                         window=index)
        observed, notes = [], []
        for obs in self._observed.pop(index, ()):
            detail = obs.detail.settle(stats) if obs.detail is not None else None
            more = detail.measurements() if detail is not None else ()
            verdicts += [m.verdict(phase=phase, window=index, start=stats.start, end=stats.end, active_faults=faults)
                         for m in obs.measurements + more if m.applies_to(phase)]
            if detail is not None:
                observed.append((obs.source, detail))
                pooled = self._phase_observed.setdefault(phase, {})
                pooled[obs.source] = pooled[obs.source].merge(detail) if obs.source in pooled else detail
            if obs.error is not None:
                notes.append(f"{obs.source}: {obs.error}")
        abort = evaluate_abort(stats, self.abort_when, phase=phase, active_faults=faults, window=index)
        result = WindowResult(phase, stats, qstats, faults, tuple(verdicts), tuple(abort), sstats, tuple(observed),
                              tuple(notes))
        self.results.append(result)
        return result

    def close_due(self, now: float, *, grace: float, phase_of: Callable[[float, float], str],
                  faults_of: Callable[[float, float], Sequence[str]],
                  ready: Callable[[int], bool] | None = None) -> list[WindowResult]:
        """Close every window that ended at least ``grace`` seconds before ``now`` (and, with
        ``ready``, whose observations are in or timed out)."""
        closed = []
        while self.grid.bounds(self._next)[1] + grace <= now and (ready is None or ready(self._next)):
            start, end = self.grid.bounds(self._next)
            closed.append(self.close_window(self._next, phase=phase_of(start, end), active_faults=faults_of(start, end)))
        return closed

    def _pool(self, phase: str, acc: WindowAccumulator, quality: _Quality) -> None:
        if phase not in self._phases:
            self._phases[phase] = (WindowAccumulator(-1, acc.start, acc.end), _Quality())
        pooled, pooled_quality = self._phases[phase]
        pooled.merge(acc)
        pooled_quality.merge(quality)

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for r in self.results for v in r.verdicts]

    # -- summaries

    def phase_results(self) -> list[PhaseResult]:
        """Per phase: windows merged (histograms added, probes and scores pooled)."""
        out = []
        for phase, (acc, quality) in self._phases.items():
            rs = [r for r in self.results if r.phase == phase]
            reference = self._reference if phase != BASELINE else None
            streams = self.steady.streams
            sstats = stream_stats(quality.streams, streams.sla) if streams is not None else None
            observed = tuple(self._phase_observed.get(phase, {}).items())
            stats = acc.stats()
            verdicts = tuple(m.verdict(phase=phase, window=None, start=stats.start, end=stats.end)
                             for _, detail in observed for m in detail.measurements() if m.applies_to(phase))
            out.append(PhaseResult(phase, len(rs), all(r.ok for r in rs), stats, quality.finish(reference), sstats,
                                   observed, verdicts))
        return out

    def recovery(self, faults_ended_at: float, within: float) -> RecoveryResult:
        """Time to recover: from the faults' end to the end of the last failing recovery window."""
        rs = [r for r in self.results if r.phase == RECOVERY]
        if not rs or not rs[-1].ok:
            return RecoveryResult(faults_ended_at, within, False, None)
        failing_ends = [r.stats.end for r in rs if not r.ok]
        took = max(0.0, max(failing_ends) - faults_ended_at) if failing_ends else 0.0
        return RecoveryResult(faults_ended_at, within, took <= within + 1e-9, took)

    def checks(self, recovery: RecoveryResult | None = None) -> list[Check]:
        return build_checks(self.verdicts, recovery)
