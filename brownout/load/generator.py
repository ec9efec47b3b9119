"""The open-loop engine: requests start at their scheduled times whatever the server does.

Latency runs from the *scheduled* start, so a stalled server shows its stall in every
request it delayed (no coordinated omission); only a request the ~1 ms timer started early
counts from its actual start, so latency is never negative. A request that cannot start in
time is a recorded drop, never silently skipped: ``in_flight_cap`` reached
(``error="in_flight_cap"``) or the generator itself more than ``max_start_lag`` behind
(``"saturated"``). A run
ends by itself: at the shape's end, after ``max_requests``, or when ``stop`` is set; then it
waits for what is in flight (bounded by ``request_timeout``, counted from the schedule).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from brownout.load.client import HttpClient, Job, parse_target
from brownout.load.edgecases import EdgeCaseReport, EdgeCaseTally
from brownout.load.payloads import PayloadSource
from brownout.load.schedule import arrival_times
from brownout.load.shapes import Shape
from brownout.load.tracing import LoadTracing
from brownout.records import RequestRecord
from brownout.windows import WindowSeries, WindowStats
from faults.errors import InvalidInput

_BATCH = 2000  # arrivals handled per tick before letting responses in
# Timers are only good to ~1 ms (uvloop rounds delays to whole ms; a shorter wait would spin),
# so each tick also starts what is due within the next millisecond. Such a request's latency
# runs from its actual start; a late one's from its schedule (lateness is never hidden).
_HORIZON = 0.001


@dataclass(frozen=True, slots=True)
class LoadSummary:
    target_url: str
    shape: str
    started_at: float  # clock value at t = 0; ``RequestRecord.scheduled_at`` is relative to it
    planned_s: float  # how long the schedule ran (shorter when stopped or capped)
    elapsed_s: float  # until the last response
    scheduled: int
    sent: int
    dropped: int
    target_rate: float  # scheduled / planned_s
    achieved_rate: float  # sent / the time sending took
    client_lag_max_s: float  # worst lateness of the generator itself: its own health
    stopped_early: bool
    total: WindowStats  # normal traffic only, one window over [0, planned_s)
    windows: tuple[WindowStats, ...]
    edge_cases: EdgeCaseReport


async def run_load(
    target_url: str,
    shape: Shape,
    payloads: PayloadSource | None = None,
    *,
    connections: int = 64,
    in_flight_cap: int = 10_000,
    max_requests: int | None = None,
    request_timeout: float = 10.0,
    keep_bodies: bool = False,
    on_record: Callable[[RequestRecord], None] | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] | None = None,
    window_s: float = 1.0,
    stats: WindowSeries | None = None,
    max_start_lag: float = 0.5,
    on_in_flight: Callable[[float, int], None] | None = None,
    arrivals: Iterator[float] | None = None,
    start_at: float | None = None,
    tracing: LoadTracing | None = None,
) -> LoadSummary:
    """Run ``shape`` open-loop against ``target_url`` and summarise it.

    ``clock`` must be monotonic seconds (default ``time.monotonic``). ``stats`` lets a
    caller watch windows fill while the run goes (live view); one is made if not given.
    ``on_record`` sees every record, edge cases and drops included; ``on_in_flight(t, n)``
    the requests on the wire at run second ``t``, once per scheduling tick. ``arrivals``
    replaces the shape's own schedule (a worker's share of a distributed run: the shape still
    gives the run's length) and ``start_at`` is the clock value of t = 0 (default: now).
    ``tracing``: sampled requests carry a ``traceparent`` and become spans (``brownout.load.tracing``).
    """
    if in_flight_cap < 1:
        raise InvalidInput("must be >= 1", "in_flight_cap")
    if not request_timeout > 0:
        raise InvalidInput("must be > 0", "request_timeout")
    if max_requests is not None and max_requests < 0:
        raise InvalidInput("must be >= 0", "max_requests")
    engine = _Engine(target_url, shape, payloads or PayloadSource(), connections, in_flight_cap,
                     max_requests, request_timeout, keep_bodies, on_record, stop, clock,
                     stats or WindowSeries(window_s), max_start_lag, on_in_flight, arrivals, tracing)
    return await engine.run(start_at)


class _Engine:
    def __init__(self, url: str, shape: Shape, payloads: PayloadSource, connections: int,
                 cap: int, max_requests: int | None, timeout: float, keep_bodies: bool,
                 on_record: Callable[[RequestRecord], None] | None, stop: asyncio.Event | None,
                 clock: Callable[[], float] | None, stats: WindowSeries, max_start_lag: float,
                 on_in_flight: Callable[[float, int], None] | None,
                 arrivals: Iterator[float] | None = None, tracing: LoadTracing | None = None) -> None:
        self.url = url
        self.shape = shape
        target = parse_target(url)
        self.loop = asyncio.get_running_loop()
        self.clock = clock or time.monotonic  # ns resolution; uvloop's loop.time() is ms
        self.encode = payloads.indexed_encoder(target)
        self.client = HttpClient(target, self._on_done, connections=connections, request_timeout=timeout,
                                 keep_bodies=keep_bodies, clock=self.clock)
        self.cap = cap
        self.max_requests = max_requests
        self.timeout = timeout
        self.on_record = on_record
        self.stop = stop
        self.stats = stats
        self.on_in_flight = on_in_flight
        self.tracing = tracing
        self.tally = EdgeCaseTally(payloads.edge_cases)
        self.max_start_lag = max_start_lag
        self.arrivals = arrivals if arrivals is not None else arrival_times(shape)
        self.next_t: float | None = None
        self.t0 = 0.0
        self.scheduled = self.sent = self.dropped = 0
        self.lag_max = 0.0
        self.last_send = 0.0
        self.last_due = 0.0  # the latest arrival handled: in-flight samples are taken on the schedule's clock
        self.end_t: float | None = None  # set when scheduling ends
        self.stopped_early = False
        self.timer: asyncio.TimerHandle | None = None
        self.error: BaseException | None = None
        self.ended: asyncio.Future[None] = self.loop.create_future()
        self.drained: asyncio.Future[None] = self.loop.create_future()

    async def run(self, start_at: float | None = None) -> LoadSummary:
        self.next_t = next(self.arrivals, None)
        self.t0 = self.clock() + 0.005 if start_at is None else start_at  # a moment to arm the first timer
        self._arm()
        waiters: list[asyncio.Future[object]] = [self.ended]  # type: ignore[list-item]
        if self.stop is not None:
            waiters.append(self.loop.create_task(self.stop.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if not self.ended.done():
                self._end(stopped=True)
            if self.client.in_flight and not self.drained.done():
                await self.drained
        finally:
            for w in waiters[1:]:
                w.cancel()
            if self.timer is not None:
                self.timer.cancel()
            await self.client.close()
        if self.error is not None:
            raise self.error
        return self._summary()

    def _arm(self) -> None:
        if self.next_t is None:
            self._end()
            return
        delay = self.t0 + self.next_t - self.clock() - _HORIZON / 2
        self.timer = self.loop.call_at(self.loop.time() + max(0.0, delay), self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.ended.done():
            return
        rel = self.clock() - self.t0
        client, t0 = self.client, self.t0
        handled = 0
        horizon = rel + _HORIZON
        while self.next_t is not None and self.next_t <= horizon:
            if self.max_requests is not None and self.scheduled >= self.max_requests:
                self._end(stopped=True)
                return
            t = self.last_due = self.next_t
            seq = self.scheduled
            self.scheduled += 1
            wire, edge, index = self.encode(seq)  # drawn even when dropped: the seeded mix stays put
            lag = rel - t
            if lag > self.lag_max:
                self.lag_max = lag
            if lag > self.max_start_lag:
                self._drop(t, "saturated", edge)
            elif client.in_flight >= self.cap:
                self._drop(t, "in_flight_cap", edge)
            else:
                self.sent += 1
                self.last_send = rel
                job = Job(wire, t0 + t, t0 + t + self.timeout, edge, t0 + min(t, rel), index)
                if self.tracing is not None:
                    self.tracing.stamp(job)
                client.submit(job)
            self.next_t = next(self.arrivals, None)
            handled += 1
            if handled >= _BATCH:
                break
        self.stats.sent = self.sent
        # A tick that ran late (past the load's end) would open an empty window after the last one,
        # and one that ran early (timers are good to 1 ms) an empty one before the first
        at = max(0.0, min(rel, self.last_due))
        self.stats.observe_in_flight(at, client.in_flight)
        if self.on_in_flight is not None:
            self.on_in_flight(at, client.in_flight)
        if self.stop is not None and self.stop.is_set():
            self._end(stopped=True)
        elif self.max_requests is not None and self.scheduled >= self.max_requests:
            self._end(stopped=self.next_t is not None)
        elif handled >= _BATCH:
            self.timer = self.loop.call_soon(self._tick)  # type: ignore[assignment]
        else:
            self._arm()

    def _end(self, stopped: bool = False) -> None:
        if self.ended.done():
            return
        rel = self.clock() - self.t0
        self.stopped_early = stopped
        if stopped:
            self.end_t = min(rel, self.next_t) if self.next_t is not None else rel
        else:
            self.end_t = self.shape.duration
        self.ended.set_result(None)
        if self.client.in_flight == 0 and not self.drained.done():
            self.drained.set_result(None)

    def _drop(self, t: float, why: str, edge: str | None) -> None:
        self.dropped += 1
        self._record(RequestRecord(t, 0.0, 0, why, 0, edge, True, None))

    def _on_done(self, job: Job, status: int, error: str | None, nbytes: int, body: bytes | None) -> None:
        now = self.clock()
        if job.trace is not None:
            self.tracing.finish(job, status, error)  # type: ignore[union-attr]
        self._record(RequestRecord(job.scheduled - self.t0, now - job.origin, status, error, nbytes,
                                   job.tag, False, body, job.payload))  # type: ignore[arg-type]
        if self.ended.done() and self.client.in_flight == 0 and not self.drained.done():
            self.drained.set_result(None)

    def _record(self, record: RequestRecord) -> None:
        if record.edge_case is None:
            self.stats.add(record)
        else:
            self.tally.add(record)
        if self.on_record is not None and self.error is None:
            try:
                self.on_record(record)
            except Exception as exc:  # a broken consumer stops the run, and is re-raised from it
                self.error = exc
                self._end(stopped=True)

    def _summary(self) -> LoadSummary:
        planned = self.end_t if self.end_t is not None else self.shape.duration
        send_span = max(planned, self.last_send)
        return LoadSummary(
            target_url=self.url,
            shape=self.shape.name,
            started_at=self.t0,
            planned_s=planned,
            elapsed_s=self.clock() - self.t0,
            scheduled=self.scheduled,
            sent=self.sent,
            dropped=self.dropped,
            target_rate=self.scheduled / planned if planned > 0 else 0.0,
            achieved_rate=self.sent / send_span if send_span > 0 else 0.0,
            client_lag_max_s=self.lag_max,
            stopped_early=self.stopped_early,
            total=self.stats.total(0.0, planned),
            windows=tuple(self.stats.windows()),
            edge_cases=self.tally.report(),
        )
