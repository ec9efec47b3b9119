"""One distributed load, seen from the master: shares handed out, windows merged, losses handled.

The master sends each worker a ``WorkerPlan`` with the shared start time and its epoch
(``share``), then merges the windows of their reports into one ``WindowSeries`` and hands
each piece to ``on_window`` (the runner merges it into the steady-state checker's open
window). A worker is *lost* when its process exits, Locust stops counting it (no
heartbeat for 3 s, or it quit), it is silent for ``SILENCE_S``, its run fails, or its final
report does not come; the others then take over its share from ``REBALANCE_LEAD`` seconds
later (a new epoch), and with fewer than ``min_workers`` left the load stops and the run
raises ``Unreachable`` (exit 4, could not run). A worker that joins mid-run gets a share
the same way. What a lost worker sent and did not report yet is lost with it; the journal
says when and why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brownout.load.distributed.protocol import (
    RUN,
    SHARE,
    STOP,
    ChecksTally,
    ChecksWire,
    EpochWire,
    WorkerPlan,
    WorkerReport,
    corpus_slice,
    edge_case_wire,
    merge_edge_reports,
    worker_seed,
)
from brownout.load.distributed.share import Epoch, GlobalSchedule
from brownout.load.generator import LoadSummary
from brownout.load.payloads import PayloadSource
from brownout.load.shapes import Shape
from brownout.windows import WindowAccumulator, WindowGrid, WindowSeries, WindowStats
from faults.errors import InvalidInput, Unreachable

SILENCE_S = 3.0  # a running worker reports 4 times a second; this long without a word, it is lost
REBALANCE_LEAD = 0.2  # a new epoch starts this long after it is decided: time for SHARE to arrive
FINAL_GRACE_S = 5.0  # beyond the request timeout, how long final reports may take

OnWindow = Callable[[WindowAccumulator, ChecksTally | None], None]  # a window piece and its response checks
OnEvent = Callable[..., None]  # (name, **detail)
Send = Callable[[str, str, Any], None]  # (worker, message type, data)


@dataclass(frozen=True)
class LoadJob:
    """What to run, as for ``run_load``; ``grid`` is in this load's seconds (t = 0 at ``start_at``)."""

    target_url: str
    shape: Shape
    payloads: PayloadSource | None = None
    connections: int = 64
    in_flight_cap: int = 10_000
    request_timeout: float = 10.0
    max_start_lag: float = 0.5
    grid: WindowGrid = WindowGrid(1.0)
    edge_cases_in_windows: bool = False  # the runner's windows count edge cases; brownout load's do not
    checks: ChecksWire | None = None


@dataclass
class _Member:
    worker: str
    number: int  # order of joining this run: its seed and, with a big corpus, its slice
    seen: float
    epoch: Epoch | None = None
    merged: WindowAccumulator = field(default_factory=lambda: WindowAccumulator(-1, 0.0, 0.0))
    sent: int = 0
    in_flight: int = 0
    final: WorkerReport | None = None
    lost_at: float | None = None
    lost_reason: str | None = None


@dataclass(frozen=True)
class WorkerResult:
    """One worker's part of a run: what the master merged from its reports, and what it said itself."""

    worker: str
    scheduled: int
    sent: int
    dropped: int
    lag_max_s: float
    cpu_s: float
    merged: WindowAccumulator  # the master's merge of this worker's windows
    reported: WindowAccumulator | None  # the worker's own total (its final report); None if lost
    lost_at: float | None = None
    lost_reason: str | None = None

    @property
    def total(self) -> WindowStats:
        return self.merged.stats()


@dataclass(frozen=True)
class DistributedSummary:
    load: LoadSummary
    workers: tuple[WorkerResult, ...]


class DistributedRun:
    def __init__(self, run_id: str, job: LoadJob, *, start_at: float, min_workers: int, send: Send,
                 on_event: OnEvent, on_window: OnWindow | None = None, stats: WindowSeries | None = None) -> None:
        self.run_id = run_id
        self.job = job
        self.start_at = start_at  # monotonic clock at t = 0
        self.min_workers = min_workers
        self._send = send
        self._event = on_event
        self._on_window = on_window
        self.stats = stats if stats is not None else WindowSeries(job.grid)
        self.schedule = GlobalSchedule(job.shape.segments())
        self.members: dict[str, _Member] = {}
        self.failure: Unreachable | None = None
        self.stopped_at: float | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._templates = tuple(job.payloads.templates) if job.payloads is not None else ()

    def now(self) -> float:
        """This load's second (negative before it starts)."""
        return time.monotonic() - self.start_at

    @property
    def live(self) -> list[_Member]:
        return sorted((m for m in self.members.values() if m.lost_at is None), key=lambda m: m.number)

    @property
    def in_flight(self) -> int:
        return sum(m.in_flight for m in self.live)

    # -- membership

    def begin(self, workers: list[str]) -> None:
        for worker in workers:
            self.members[worker] = _Member(worker, len(self.members), time.monotonic())
        self._hand_out(0, 0.0)

    def join(self, worker: str) -> None:
        """A worker that connected mid-run takes a share from a moment ahead (none near the end)."""
        at = max(0.0, self.now() + REBALANCE_LEAD)
        if worker in self.members or self.failure is not None or self.stopped_at is not None \
                or at >= self.job.shape.duration:
            return
        self.members[worker] = _Member(worker, len(self.members), time.monotonic())
        self._event("worker_joined", worker=worker, at=round(self.now(), 3), workers=len(self.live))
        self._hand_out(self.schedule.count_before(at), at)

    def lose(self, worker: str, reason: str) -> None:
        member = self.members.get(worker)
        if member is None or member.lost_at is not None or member.final is not None:
            return
        member.lost_at, member.lost_reason = self.now(), reason
        self._send(worker, STOP, {"run": self.run_id})  # in case it is alive after all
        left = self.live
        self._event("worker_lost", worker=worker, at=round(member.lost_at, 3), reason=reason, workers_left=len(left))
        if len(left) < self.min_workers and self.failure is None:
            self.failure = Unreachable(f"{len(left)} load worker(s) left, fewer than min_workers {self.min_workers} "
                                       f"(lost {worker}: {reason})")
            self.stop()
            self._finish()
            return
        at = max(0.0, self.now() + REBALANCE_LEAD)
        if self.stopped_at is None and at < self.job.shape.duration:
            self._hand_out(self.schedule.count_before(at), at)
        self._check_done()

    def _hand_out(self, from_k: int, at: float) -> None:
        live = self.live
        for slot, member in enumerate(live):
            epoch = Epoch(from_k, slot, len(live), at)
            if member.epoch is None:
                self._send(member.worker, RUN, self._plan(member, epoch).model_dump())
            else:
                self._send(member.worker, SHARE, {"run": self.run_id, "epoch": EpochWire.of_epoch(epoch).model_dump()})
            member.epoch = epoch
        if from_k:
            self._event("load_rebalanced", at=round(at, 3), workers=len(live))

    def _plan(self, member: _Member, epoch: Epoch) -> WorkerPlan:
        job, payloads = self.job, self.job.payloads or PayloadSource()
        of = max(len(self.live), member.number + 1)
        return WorkerPlan(
            run=self.run_id, url=job.target_url, shape=job.shape.name, duration=job.shape.duration,
            segments=[(s.start, s.end, s.rate_start, s.rate_end) for s in job.shape.segments()],
            start_wall=time.time() + (self.start_at - time.monotonic()), epoch=EpochWire.of_epoch(epoch),
            templates=corpus_slice(self._templates, member.number, of), edge_cases=edge_case_wire(payloads.edge_cases),
            oversized_bytes=payloads.edge_cases.oversized_bytes, seed=worker_seed(payloads.seed, member.number),
            connections=job.connections, in_flight_cap=job.in_flight_cap, request_timeout=job.request_timeout,
            max_start_lag=job.max_start_lag, window=job.grid.length, window_origin=job.grid.origin,
            edge_cases_in_windows=job.edge_cases_in_windows, checks=job.checks)

    def stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = max(0.0, min(self.now(), self.job.shape.duration))
            for member in self.live:
                self._send(member.worker, STOP, {"run": self.run_id})

    # -- reports

    def report(self, worker: str, data: Any) -> None:
        member = self.members.get(worker)
        if member is None or member.lost_at is not None or member.final is not None:
            return
        member.seen = time.monotonic()
        try:
            report = WorkerReport.parse(data)
            windows = [WindowAccumulator.from_dict(w, f"report.windows[{i}]") for i, w in enumerate(report.windows)]
        except InvalidInput as exc:
            self.lose(worker, f"bad report: {exc}")
            return
        if report.error is not None:
            self.lose(worker, report.error)
            return
        checks = {c.index: c for c in report.checks}
        for acc in windows:
            member.merged.merge(acc)
            self.stats.accumulator(acc.index).merge(acc)
            if self._on_window is not None:
                self._on_window(acc, checks.get(acc.index))
        member.sent, member.in_flight = report.sent, report.in_flight
        self.stats.sent = sum(m.sent for m in self.members.values())
        self.stats.in_flight = self.in_flight
        if report.final:
            member.final = report
            self._check_done()

    def check_silence(self, now: float) -> None:
        for member in self.live:
            if member.final is None and now - member.seen > SILENCE_S:
                self.lose(member.worker, f"silent for {now - member.seen:.1f}s")

    def _check_done(self) -> None:
        if all(m.final is not None for m in self.live):
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    # -- result

    def summary(self) -> DistributedSummary:
        planned = self.stopped_at if self.stopped_at is not None else self.job.shape.duration
        results = tuple(self._result(m) for m in sorted(self.members.values(), key=lambda m: m.number))
        scheduled = sum(r.scheduled for r in results)
        sent = sum(r.sent for r in results)
        finals = [m.final.edge_cases for m in self.members.values() if m.final is not None and m.final.edge_cases]
        load = LoadSummary(
            target_url=self.job.target_url, shape=self.job.shape.name, started_at=self.start_at, planned_s=planned,
            elapsed_s=self.now(), scheduled=scheduled, sent=sent, dropped=sum(r.dropped for r in results),
            target_rate=self.schedule.count_before(planned) / planned if planned > 0 else 0.0,
            achieved_rate=sent / planned if planned > 0 else 0.0,
            client_lag_max_s=max((r.lag_max_s for r in results), default=0.0),
            stopped_early=self.stopped_at is not None, total=self.stats.total(0.0, planned),
            windows=tuple(self.stats.windows()), edge_cases=merge_edge_reports(finals))
        return DistributedSummary(load, results)

    def _result(self, m: _Member) -> WorkerResult:
        f = m.final
        if f is not None:
            reported = WindowAccumulator.from_dict(f.overall, "report.overall") if f.overall is not None else None
            return WorkerResult(m.worker, f.scheduled, f.sent, f.dropped, f.lag_max_s, f.cpu_s, m.merged, reported)
        return WorkerResult(m.worker, m.merged.sent + m.merged.dropped, m.merged.sent, m.merged.dropped, 0.0, 0.0,
                            m.merged, None, m.lost_at, m.lost_reason)
