"""One plan run on a worker: Brownout's open-loop generator on its own thread and event loop.

The worker's main thread belongs to Locust (a gevent hub: messages, heartbeats); the load
runs here, on a native thread with its own uvloop loop, so neither starves the other (they
share only the GIL, which Python hands over every few milliseconds). The two meet in three
thread-safe places: ``reassign``/``stop`` (called from the hub, run on the loop) and the
``send`` callback (a queue the hub drains into Locust messages).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from brownout import aio
from brownout.load.distributed.deltas import DeltaWindows
from brownout.load.distributed.protocol import ChecksWire, WorkerPlan, WorkerReport, edge_report_dict
from brownout.load.distributed.share import Epoch, GlobalSchedule, ShareArrivals
from brownout.load.generator import LoadSummary, run_load
from brownout.records import RequestRecord
from brownout.steady.invariants import Invariants
from brownout.windows import WindowGrid
from faults.jsonpath import compile_path

Send = Callable[[dict[str, Any]], None]


def invariants_of(checks: ChecksWire | None) -> Invariants | None:
    if checks is None:
        return None
    return Invariants(required=tuple(compile_path(p) for p in checks.required),
                      score=compile_path(checks.score) if checks.score else None,
                      version_path=compile_path(checks.version_path) if checks.version_path else None,
                      versions=tuple(checks.versions) if checks.versions is not None else None)


class ShareRun:
    """Run ``plan`` on a new thread; every report (the final one last) goes to ``send``."""

    def __init__(self, plan: WorkerPlan, send: Send) -> None:
        self.plan = plan
        self._send = send
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[Callable[[], None]] = []  # calls that came before the loop was up
        self._stop: asyncio.Event | None = None
        self._arrivals: ShareArrivals | None = None
        self._thread = threading.Thread(target=self._main, name=f"brownout-load-{plan.run}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def reassign(self, epoch: Epoch) -> None:
        self._call(lambda: self._arrivals.reassign(epoch) if self._arrivals is not None else None)

    def stop(self) -> None:
        self._call(lambda: self._stop.set() if self._stop is not None else None)

    def _call(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._loop is None:
                self._early.append(fn)
                return
            loop = self._loop
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is closed: the run is over
            pass

    def _main(self) -> None:
        try:
            aio.run(self._run())
        except Exception as exc:  # the run failed here: the master drops this worker and says why
            self._send(WorkerReport(run=self.plan.run, final=True, error=f"{exc.__class__.__name__}: {exc}")
                       .model_dump())

    async def _run(self) -> None:
        plan = self.plan
        cpu = time.process_time()
        shape = plan.segment_shape()
        self._arrivals = ShareArrivals(GlobalSchedule(shape.parts), plan.epoch.epoch())
        payloads = plan.payload_source()
        windows = DeltaWindows(WindowGrid(plan.window, plan.window_origin), invariants_of(plan.checks))
        self._stop = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            early, self._early = self._early, []
        for fn in early:
            fn()
        # The master's run second 0, on this machine's monotonic clock (wall clocks agree via NTP).
        start_at = time.monotonic() + (plan.start_wall - time.time())

        def edge_cases_too(record: RequestRecord) -> None:  # run_load hands the windows normal traffic only
            if record.edge_case is not None:
                windows.add(record)

        reporter = asyncio.ensure_future(self._report_every(windows))
        try:
            summary = await run_load(
                plan.url, shape, payloads, connections=plan.connections, in_flight_cap=plan.in_flight_cap,
                request_timeout=plan.request_timeout, keep_bodies=plan.checks is not None,
                on_record=edge_cases_too if plan.edge_cases_in_windows else None,
                stop=self._stop, stats=windows, max_start_lag=plan.max_start_lag, arrivals=self._arrivals,
                start_at=start_at)
        finally:
            reporter.cancel()
        self._send(self._report(windows, summary, time.process_time() - cpu))

    async def _report_every(self, windows: DeltaWindows) -> None:
        while True:
            await asyncio.sleep(self.plan.report_every)
            self._send(self._report(windows))

    def _report(self, windows: DeltaWindows, summary: LoadSummary | None = None, cpu_s: float = 0.0) -> dict[str, Any]:
        taken, checks = windows.take()
        report: dict[str, Any] = {"run": self.plan.run, "windows": [a.to_dict() for a in taken],
                                  "checks": [c.model_dump() for c in checks], "sent": windows.sent,
                                  "in_flight": windows.in_flight}
        if summary is not None:
            report.update(final=True, sent=summary.sent, scheduled=summary.scheduled, dropped=summary.dropped,
                          lag_max_s=summary.client_lag_max_s, cpu_s=cpu_s, overall=windows.overall.to_dict(),
                          edge_cases=edge_report_dict(summary.edge_cases), in_flight=0)
        return report
