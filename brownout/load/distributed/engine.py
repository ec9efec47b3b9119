"""The ``locust`` load engine: Locust's master in this process, workers local or elsewhere.

``async with LocustEngine(settings) as engine`` starts the master (``master``), spawns
``settings.workers`` local worker processes (``brownout load-worker``, told this process's
pid so they leave with it) and waits, bounded by ``settings.wait_s``, until they and
``settings.expect_workers`` started elsewhere have joined. ``engine.run(job)`` then runs
one load across them (``coordinator``); the runner calls it for its baseline and its
method, ``brownout load`` once (or once per stress step). Runs may overlap: the runner
arms the method's load (plans sent, start time set) while the baseline's answers come in. ``breakdown()`` is every worker's
part over all of them, for the journal.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from brownout.load.distributed.coordinator import (
    FINAL_GRACE_S,
    DistributedRun,
    DistributedSummary,
    LoadJob,
    OnEvent,
    OnWindow,
)
from brownout.load.distributed.master import LocustMaster
from brownout.load.distributed.protocol import HELLO, REPORT
from brownout.windows import WindowAccumulator, WindowSeries
from faults.errors import Unreachable

DEFAULT_PORT = 5557  # Locust's own default, for workers started elsewhere
START_LEAD = 0.25  # a load starts this long after it is asked for: time for every worker to get its plan
REPORT_LAG_S = 1.0  # a window's records reach the master at most this much later than a local run's would
_POLL = 0.1


@dataclass(frozen=True)
class EngineSettings:
    workers: int = 1  # local worker processes to start
    expect_workers: int = 0  # workers started elsewhere to wait for
    min_workers: int = 1  # fewer left during a run: it stops (exit 4)
    bind_host: str = "127.0.0.1"  # Locust's protocol has no authentication: loopback unless told otherwise
    bind_port: int | None = None  # None: DEFAULT_PORT when waiting for workers elsewhere, else any free port
    wait_s: float = 60.0  # how long to wait for the workers to join

    @property
    def total(self) -> int:
        return self.workers + self.expect_workers


@dataclass
class _Totals:
    host: str = "?"
    pid: int = 0
    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    cpu_s: float = 0.0
    lost: int = 0
    merged: WindowAccumulator | None = None


class LocustEngine:
    start_lead = START_LEAD

    def __init__(self, settings: EngineSettings, on_event: OnEvent | None = None) -> None:
        self.settings = settings
        self.on_event: OnEvent = on_event or (lambda name, **detail: None)
        port = settings.bind_port if settings.bind_port is not None else (DEFAULT_PORT if settings.expect_workers else 0)
        self.master = LocustMaster(settings.bind_host, port, self._on_message, self._on_members)
        self._members: dict[str, int] = {}  # live in Locust's eyes, said HELLO
        self._hello: dict[str, dict[str, Any]] = {}
        self._local: list[subprocess.Popen[bytes]] = []
        self._exited: set[str] = set()
        self._runs: dict[str, DistributedRun] = {}
        self._numbers = itertools.count(1)
        self._totals: dict[str, _Totals] = {}

    async def __aenter__(self) -> LocustEngine:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        port = await self.master.start()
        s = self.settings
        host = "127.0.0.1" if s.bind_host in ("0.0.0.0", "*", "") else "::1" if s.bind_host == "::" else s.bind_host
        command = [sys.executable, "-m", "brownout.cli", "load-worker", "--master-host", host, "--master-port", str(port),
                   "--parent-pid", str(os.getpid())]
        for _ in range(s.workers):
            self._local.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        if s.expect_workers:
            self.on_event("workers_waiting", expect=s.total, master=f"{s.bind_host}:{port}",
                          command=f"brownout load-worker --master-host HOST --master-port {port}")
        deadline = time.monotonic() + s.wait_s
        while len(self.live()) < s.total:
            self._poll_local()
            gone = [p for p in self._local if p.poll() is not None]
            if gone:
                raise Unreachable(f"a local load worker exited with {gone[0].returncode} before joining the master")
            if time.monotonic() > deadline:
                raise Unreachable(f"{len(self.live())} of {s.total} load workers joined the Locust master on "
                                  f"{s.bind_host}:{port} within {s.wait_s:g}s")
            await asyncio.sleep(0.05)
        self.on_event("workers_ready", workers=len(self.live()), master=f"{s.bind_host}:{port}")

    async def close(self) -> None:
        for run in self._runs.values():
            run.stop()
        await self.master.close()
        for proc in self._local:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5.0
        for proc in self._local:
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def live(self) -> list[str]:
        """Workers ready for a run, in Locust's order of joining."""
        return sorted((w for w in self._members if w not in self._exited), key=lambda w: self._members[w])

    def start_time(self, desired: float | None = None) -> float:
        """The monotonic time a load asked for at ``desired`` (None: now) can start: START_LEAD from now at the earliest."""
        now = time.monotonic()
        return max(desired if desired is not None else now, now + self.start_lead)

    @property
    def in_flight(self) -> int:
        return sum(run.in_flight for run in self._runs.values())

    async def run(self, job: LoadJob, *, start_at: float | None = None, on_window: OnWindow | None = None,
                  stats: WindowSeries | None = None, stop: asyncio.Event | None = None) -> DistributedSummary:
        """Run ``job`` across the workers from ``start_at`` (see ``start_time``); Unreachable below min_workers."""
        self._poll_local()
        workers = self.live()
        if len(workers) < self.settings.min_workers:
            raise Unreachable(f"{len(workers)} load worker(s) connected, fewer than min_workers "
                              f"{self.settings.min_workers}")
        start = self.start_time(start_at)
        run = DistributedRun(f"run-{os.getpid()}-{next(self._numbers)}", job, start_at=start,
                             min_workers=self.settings.min_workers, send=self.master.send, on_event=self.on_event,
                             on_window=on_window, stats=stats)
        self._runs[run.run_id] = run
        end = start + job.shape.duration
        try:
            run.begin(workers)
            while not run.done.done():
                await asyncio.wait([run.done], timeout=_POLL)
                self._poll_local()
                now = time.monotonic()
                run.check_silence(now)
                if stop is not None and stop.is_set():
                    run.stop()
                if run.stopped_at is not None:
                    end = min(end, run.start_at + run.stopped_at)
                if now > end + job.request_timeout + FINAL_GRACE_S:
                    for member in run.live:
                        run.lose(member.worker, "no final report")
        finally:
            if not run.done.done():
                run.stop()  # cancelled: tell the workers
            self._runs.pop(run.run_id, None)
        if run.failure is not None:
            raise run.failure
        summary = run.summary()
        self._add(summary)
        return summary

    def breakdown(self) -> list[dict[str, Any]]:
        """Every worker's part of every run so far (the journal's ``extra.load.workers``)."""
        total_sent = sum(t.sent for t in self._totals.values()) or 1
        out = []
        for worker, t in self._totals.items():
            stats = t.merged.stats() if t.merged is not None else None
            out.append({"worker": worker, "host": t.host, "pid": t.pid, "scheduled": t.scheduled, "sent": t.sent,
                        "dropped": t.dropped, "share": round(t.sent / total_sent, 4),
                        "errors": stats.errors if stats else 0, "p50_ms": stats.p50_ms if stats else None,
                        "p99_ms": stats.p99_ms if stats else None, "cpu_s": round(t.cpu_s, 3), "lost": t.lost})
        return out

    # -- internals

    def _add(self, summary: DistributedSummary) -> None:
        for r in summary.workers:
            hello = self._hello.get(r.worker, {})
            t = self._totals.setdefault(r.worker, _Totals(str(hello.get("host", "?")), int(hello.get("pid", 0) or 0)))
            t.scheduled += r.scheduled
            t.sent += r.sent
            t.dropped += r.dropped
            t.cpu_s += r.cpu_s
            t.lost += r.lost_at is not None
            if t.merged is None:
                t.merged = WindowAccumulator(-1, 0.0, 0.0)
            t.merged.merge(r.merged)

    def _on_message(self, worker: str, msg_type: str, data: Any) -> None:
        if msg_type == HELLO:
            self._hello[worker] = data if isinstance(data, dict) else {}
        elif msg_type == REPORT and isinstance(data, dict) and (run := self._runs.get(str(data.get("run")))):
            run.report(worker, data)

    def _on_members(self, members: dict[str, int]) -> None:
        for run in list(self._runs.values()):
            for worker in list(run.members):
                if worker not in members:
                    run.lose(worker, "left the master (no heartbeat for 3s, or it quit)")
            for worker in members:
                if worker not in self._members and worker not in self._exited:
                    run.join(worker)
        self._members = members

    def _poll_local(self) -> None:
        """A local worker whose process ended is lost at once (no need to wait for silence)."""
        for worker, hello in self._hello.items():
            if worker in self._exited:
                continue
            proc = next((p for p in self._local if p.pid == hello.get("pid")), None)
            if proc is not None and proc.poll() is not None:
                self._exited.add(worker)
                for run in list(self._runs.values()):
                    run.lose(worker, f"its process exited ({_exit(proc.returncode)})")


def _exit(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"
