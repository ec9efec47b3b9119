"""The method's timeline: faults added as leases at their offsets, renewed, removed; actions.

Everything this run adds is remembered so that ``cleanup`` can remove it whatever happened;
if the runner is killed outright, the leases run out on the proxies by themselves.
Offsets are seconds from the start of the method phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from brownout.report.journal import Injection
from faults.errors import BrownoutError, NotFound

log = structlog.get_logger("brownout.runner")


class FaultSink(Protocol):
    """Where fault steps go: a Brownout admin API, or an external Toxiproxy server."""

    name: str

    async def add(self, body: dict[str, Any]) -> str: ...

    async def renew(self, fault_id: str, ttl: float) -> None: ...

    async def remove(self, fault_id: str) -> None: ...


class Action(Protocol):
    async def perform(self) -> None: ...

    async def undo(self) -> None: ...


@dataclass
class Happened:
    """One fault or action as it happened (frozen into a journal ``Injection`` at the end)."""

    id: str
    step: int
    kind: Literal["fault", "action"]
    name: str
    target: str
    planned_at: float
    planned_until: float | None = None
    proxy: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    removed: bool = False
    error: str | None = None

    def freeze(self) -> Injection:
        return Injection(**self.__dict__)


@dataclass(frozen=True)
class PlannedFault:
    step: int
    at: float
    duration: float | None
    sink: FaultSink
    body: dict[str, Any]  # the admin API body (type, route, params, match, seed, id)


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
    happened: list[Happened] = field(default_factory=list)
    _live: dict[str, tuple[FaultSink, Happened]] = field(default_factory=dict)
    _performed: list[tuple[PlannedAction, Happened]] = field(default_factory=list)
    _origin: float = 0.0  # clock value of t = 0 of the run (journal times are relative to it)
    _method_at: float = 0.0  # run time at which the method phase starts

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
                out.append(f"{h.name}@{h.target}")
        return out

    def active_now(self) -> list[str]:
        return [f"{h.name}@{h.target}" for _, h in self._live.values()]

    def _now(self) -> float:
        return self.clock() - self._origin

    async def run(self, origin: float, method_at: float) -> None:
        """Play the timeline; ``origin`` is the run's t = 0 (clock), ``method_at`` its method start."""
        self._origin, self._method_at = origin, method_at
        events: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
        for planned in self.faults:
            events.append((planned.at, 1, lambda p=planned: self._add(p)))
            if self.fault_end(planned) < self.method_s:
                events.append((self.fault_end(planned), 0, lambda p=planned: self._remove_step(p.step)))
        for action in self.actions:
            events.append((action.at, 2, lambda a=action: self._perform(a)))
        renewer = asyncio.ensure_future(self._renew_forever())
        try:
            for offset, _, event in sorted(events, key=lambda e: (e[0], e[1])):
                await self._sleep_until(method_at + offset)
                await event()
            await self._sleep_until(method_at + self.method_s)
            for fault_id in list(self._live):
                await self._remove(fault_id)
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def all_active(self, origin: float) -> AsyncIterator[None]:
        """Every fault at once, renewed, for as long as the block runs (stress with faults)."""
        self._origin = origin
        for planned in self.faults:
            await self._add(planned)
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

    async def _add(self, planned: PlannedFault) -> None:
        body = planned.body
        happened = Happened(
            id=body.get("id", ""), step=planned.step, kind="fault", name=body["type"], target=body["route"],
            planned_at=self._method_at + planned.at, planned_until=self._method_at + self.fault_end(planned),
            proxy=planned.sink.name, params=dict(body.get("params") or {}),
        )
        self.happened.append(happened)
        try:
            happened.id = await planned.sink.add({**body, "ttl": self.lease})
        except BrownoutError as exc:
            happened.error = str(exc)
            raise
        happened.started_at = self._now()
        self._live[happened.id] = (planned.sink, happened)
        log.info("fault_started", step=planned.step, fault_id=happened.id, route=happened.target)

    async def _remove_step(self, step: int) -> None:
        for fault_id, (_, happened) in list(self._live.items()):
            if happened.step == step:
                await self._remove(fault_id)

    async def _remove(self, fault_id: str) -> None:
        sink, happened = self._live.pop(fault_id)
        happened.ended_at = self._now()
        try:
            await sink.remove(fault_id)
        except NotFound:
            pass  # already gone (its lease ran out, or the kill switch was used): fine
        except BrownoutError as exc:
            happened.error = f"removal failed: {exc}"
            raise
        happened.removed = True
        log.info("fault_stopped", fault_id=fault_id)

    async def _perform(self, planned: PlannedAction) -> None:
        happened = Happened(id=f"step-{planned.step}", step=planned.step, kind="action", name=planned.name,
                            target=planned.target, planned_at=self._method_at + planned.at)
        self.happened.append(happened)
        try:
            await planned.action.perform()
        except BrownoutError as exc:
            happened.error = str(exc)
            raise
        happened.started_at = self._now()
        self._performed.append((planned, happened))

    async def _renew_forever(self) -> None:
        while True:
            await self.sleep(max(self.lease / 3, 0.05))
            for fault_id, (sink, _) in list(self._live.items()):
                try:
                    await sink.renew(fault_id, self.lease)
                except NotFound:
                    self._live.pop(fault_id, None)
                except BrownoutError as exc:
                    log.warning("lease_renewal_failed", fault_id=fault_id, error=str(exc))

    async def cleanup(self) -> list[str]:
        """Remove every fault this run added and undo every action; never raises."""
        problems: list[str] = []
        for fault_id in list(self._live):
            try:
                await self._remove(fault_id)
            except BrownoutError as exc:
                problems.append(f"could not remove fault {fault_id}: {exc} (its lease runs out within {self.lease:g}s)")
        for planned, happened in reversed(self._performed):
            try:
                await planned.action.undo()
                happened.ended_at = self._now()
            except BrownoutError as exc:
                problems.append(f"could not undo {planned.name}@{planned.target}: {exc}")
        self._performed.clear()
        return problems
