"""The method's timeline: faults added as leases at their offsets, renewed, removed; actions.

Everything this run adds is remembered so that ``cleanup`` can remove it whatever happened;
if the runner is killed outright, the leases run out on the proxies by themselves.
Offsets are seconds from the start of the method phase.

A sink with a lead (a group of sidecars) gets each fault ``lead_s`` before its start, with the
wall-clock ``start_at`` and ``end_at`` it is to be in force between, and is asked after the
start when each sidecar activated it. A sidecar lost while a fault is in force (renewal or that
read-back finds it unreachable) ends the run: ``run`` raises, the runner cleans up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import structlog

from brownout.fleet.records import Arming
from brownout.fleet.sink import Window
from brownout.report.journal import Injection
from faults.errors import BrownoutError, NotFound, Unreachable

log = structlog.get_logger("brownout.runner")


class FaultSink(Protocol):
    """Where fault steps go: sidecars of a group (``brownout.fleet.sink``), or an external Toxiproxy server."""

    name: str
    lead_s: float  # how long before its start a fault is sent (0: at its start)

    async def add(self, body: dict[str, Any], window: Window | None) -> str: ...

    async def confirm(self, fault_id: str) -> None: ...

    async def renew(self, fault_id: str, ttl: float) -> None: ...

    async def remove(self, fault_id: str) -> None: ...

    def report(self, fault_id: str) -> Arming | None: ...


class Action(Protocol):
    async def perform(self) -> None: ...

    async def undo(self) -> None: ...


@dataclass(frozen=True)
class PlannedFault:
    step: int
    at: float
    duration: float | None
    sink: FaultSink
    body: dict[str, Any]  # the admin API body (type, route, params, match, seed, id)
    synchronized: bool = True  # staged with start_at/end_at (tcp toxics start when added)

    @property
    def lead_s(self) -> float:
        return self.sink.lead_s if self.synchronized else 0.0


@dataclass(frozen=True)
class PlannedAction:
    step: int
    at: float
    name: str
    target: str
    action: Action


@dataclass
class Timeline:
    faults: list[PlannedFault]
    actions: list[PlannedAction]
    method_s: float
    lease: float = 30.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    wall: Callable[[], float] = time.time
    happened: list[Injection] = field(default_factory=list)  # the journal's record, replaced as things happen
    _live: dict[str, tuple[FaultSink, int]] = field(default_factory=dict)  # fault id → sink, index in happened
    _performed: list[tuple[PlannedAction, int]] = field(default_factory=list)
    _origin: float = 0.0  # clock value of t = 0 of the run (journal times are relative to it)
    _method_at: float = 0.0  # run time at which the method phase starts
    _confirms: list[asyncio.Future[None]] = field(default_factory=list)
    _fatal: list[BaseException] = field(default_factory=list)  # what ends the run from a side task
    _failed: asyncio.Event | None = None

    def fault_end(self, planned: PlannedFault) -> float:
        return min(planned.at + planned.duration, self.method_s) if planned.duration is not None else self.method_s

    @property
    def faults_end(self) -> float:
        """Method-relative time at which the last fault ends (0 when there is none)."""
        return max([self.fault_end(f) for f in self.faults] + [a.at for a in self.actions] + [0.0])

    def active_between(self, start: float, end: float) -> list[str]:
        """Faults in force at any moment of [start, end) (run time), as ``type@route``."""
        out = []
        for h in self.happened:
            if h.kind != "fault" or h.started_at is None:
                continue
            stop = h.ended_at if h.ended_at is not None else float("inf")
            if h.started_at < end and stop > start:
                out.append(h.describe())
        return out

    def active_now(self) -> list[str]:
        return [self.happened[i].describe() for _, i in self._live.values()]

    def _record(self, injection: Injection) -> int:
        self.happened.append(injection)
        return len(self.happened) - 1

    def _update(self, index: int, **changes: Any) -> Injection:
        self.happened[index] = replace(self.happened[index], **changes)
        return self.happened[index]

    def _now(self) -> float:
        return self.clock() - self._origin

    def _wall_at(self, run_time: float) -> float:
        return self.wall() + (run_time - self._now())

    def _run_at(self, wall_time: float) -> float:
        return self._now() + (wall_time - self.wall())

    def _fail(self, exc: BaseException) -> None:
        self._fatal.append(exc)
        if self._failed is not None:
            self._failed.set()

    async def run(self, origin: float, method_at: float) -> None:
        """Play the timeline; ``origin`` is the run's t = 0 (clock), ``method_at`` its method start."""
        self._origin, self._method_at = origin, method_at
        self._failed = asyncio.Event()
        events: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
        for planned in self.faults:
            events.append((planned.at - planned.lead_s, 1, lambda p=planned: self._add(p)))
            if self.fault_end(planned) < self.method_s:
                # a staged fault ends on the sidecars' own timers: read that back a lead later
                events.append((self.fault_end(planned) + planned.lead_s, 0, lambda p=planned: self._remove_step(p.step)))
        for action in self.actions:
            events.append((action.at, 2, lambda a=action: self._perform(a)))
        lead = max([p.lead_s for p in self.faults] + [0.0])
        player = asyncio.ensure_future(self._play(sorted(events, key=lambda e: (e[0], e[1])), method_at, lead))
        renewer = asyncio.ensure_future(self._renew_forever())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait([player, failed], return_when=asyncio.FIRST_COMPLETED)
            if self._fatal:
                raise self._fatal[0]
            await player
        finally:
            for task in (player, renewer, failed):
                task.cancel()
            await asyncio.gather(player, renewer, failed, return_exceptions=True)

    async def _play(self, events: list[tuple[float, int, Callable[[], Awaitable[None]]]], method_at: float,
                    lead: float) -> None:
        for offset, _, event in events:
            await self._sleep_until(method_at + offset)
            await event()
        await self._sleep_until(method_at + self.method_s + lead)
        await asyncio.gather(*self._confirms)
        if self._fatal:
            raise self._fatal[0]
        for fault_id in list(self._live):
            await self._remove(fault_id)

    @contextlib.asynccontextmanager
    async def all_active(self, origin: float) -> AsyncIterator[None]:
        """Every fault at once, renewed, for as long as the block runs (stress with faults)."""
        self._origin = origin
        for planned in self.faults:
            await self._add(planned, timed=False)
        renewer = asyncio.ensure_future(self._renew_forever())
        try:
            yield
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            for fault_id in list(self._live):
                await self._remove(fault_id)

    async def _sleep_until(self, run_time: float) -> None:
        delay = run_time - self._now()
        if delay > 0:
            await self.sleep(delay)

    async def _add(self, planned: PlannedFault, *, timed: bool = True) -> None:
        body = planned.body
        start = self._now() + planned.lead_s  # run seconds
        if timed:
            start = max(self._method_at + planned.at, start)
        end = self._method_at + self.fault_end(planned)
        window = None
        if planned.synchronized:
            window = Window(self._wall_at(start), self._wall_at(end) if timed and end > start else None)
        index = self._record(Injection(
            id=body.get("id", ""), step=planned.step, kind="fault", name=body["type"], target=body["route"],
            planned_at=self._method_at + planned.at, planned_until=end,
            proxy=planned.sink.name, params=dict(body.get("params") or {}),
        ))
        try:
            fault_id = await planned.sink.add({**body, "ttl": self.lease}, window)
        except BrownoutError as exc:
            self._update(index, error=str(exc), arming=planned.sink.report(body.get("id", "")))
            raise
        started = start if window is not None else self._now()
        self._update(index, id=fault_id, started_at=started, arming=planned.sink.report(fault_id))
        self._live[fault_id] = (planned.sink, index)
        log.info("fault_started", step=planned.step, fault_id=fault_id, route=body["route"])
        if window is not None:
            self._confirms.append(asyncio.ensure_future(self._confirm(planned.sink, fault_id, index, start)))

    async def _confirm(self, sink: FaultSink, fault_id: str, index: int, start: float) -> None:
        """After the start: each sidecar's activation time, and the injection's true start."""
        await self._sleep_until(start + 0.005)
        try:
            await sink.confirm(fault_id)
        except BrownoutError as exc:
            self._update(index, error=str(exc), arming=sink.report(fault_id))
            self._fail(exc)
            return
        arming = sink.report(fault_id)
        if arming is not None and arming.activated:
            self._update(index, started_at=self._run_at(min(arming.activated.values())), arming=arming)

    async def _remove_step(self, step: int) -> None:
        for fault_id, (_, index) in list(self._live.items()):
            if self.happened[index].step == step:
                await self._remove(fault_id)

    async def _remove(self, fault_id: str) -> None:
        sink, index = self._live.pop(fault_id)
        self._update(index, ended_at=self._now())
        try:
            await sink.remove(fault_id)
        except NotFound:
            pass  # already gone (its lease ran out, or the kill switch was used): fine
        except BrownoutError as exc:
            self._update(index, error=f"removal failed: {exc}", arming=sink.report(fault_id))
            raise
        arming = sink.report(fault_id)
        if arming is not None and arming.ended:  # the sidecars' own end (end_at), not our call's
            self._update(index, ended_at=min(self._now(), self._run_at(min(arming.ended.values()))))
        self._update(index, removed=True, arming=arming)
        log.info("fault_stopped", fault_id=fault_id)

    async def _perform(self, planned: PlannedAction) -> None:
        index = self._record(Injection(id=f"step-{planned.step}", step=planned.step, kind="action", name=planned.name,
                                       target=planned.target, planned_at=self._method_at + planned.at))
        try:
            await planned.action.perform()
        except BrownoutError as exc:
            self._update(index, error=str(exc))
            raise
        self._update(index, started_at=self._now())
        self._performed.append((planned, index))

    async def _renew_forever(self) -> None:
        while True:
            await self.sleep(max(self.lease / 3, 0.05))
            for fault_id, (sink, index) in list(self._live.items()):
                try:
                    await sink.renew(fault_id, self.lease)
                except NotFound:
                    self._live.pop(fault_id, None)
                except Unreachable as exc:  # a sidecar holding the fault is gone: the run cannot go on
                    self._update(index, error=str(exc), arming=sink.report(fault_id))
                    self._fail(exc)
                    return
                except BrownoutError as exc:
                    log.warning("lease_renewal_failed", fault_id=fault_id, error=str(exc))

    async def cleanup(self) -> list[str]:
        """Remove every fault this run added and undo every action; never raises."""
        problems: list[str] = []
        for confirm in self._confirms:
            confirm.cancel()
        await asyncio.gather(*self._confirms, return_exceptions=True)
        for fault_id in list(self._live):
            try:
                await self._remove(fault_id)
            except BrownoutError as exc:
                problems.append(f"could not remove fault {fault_id}: {exc} (its lease runs out within {self.lease:g}s)")
        for planned, index in reversed(self._performed):
            try:
                await planned.action.undo()
                self._update(index, ended_at=self._now())
            except BrownoutError as exc:
                problems.append(f"could not undo {planned.name}@{planned.target}: {exc}")
        self._performed.clear()
        return problems
