"""A fault step on the chosen members of a group: staged on each, started together, renewed,
ended together, and what each sidecar says it did.

Arming: the same body (same fault id) goes to every chosen sidecar in parallel with a
``start_at`` a little ahead (``lead_s``, a few round trips measured at preflight) and the
step's ``end_at``; each sidecar starts and ends the fault on its own timer, so they start
together whatever the HTTP calls took, and each reports when it did (``activated_at``,
``ended_at``): the spreads are the arm and disarm skews. When fewer than ``min_armed`` could be
armed, the fault is removed from those that were, and the step fails (Unreachable: exit 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import structlog

from brownout.admin_client import AdminClient
from brownout.fleet.records import Arming
from faults.errors import BrownoutError, NotFound, Unreachable

log = structlog.get_logger("brownout.fleet")
T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """When a fault is in force, on the wall clock (None: from when it is added / until removed)."""

    start_at: float | None = None
    end_at: float | None = None


@dataclass
class _Fault:
    window: Window | None
    armed: list[str] = field(default_factory=list)
    activated: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def wall_time(text: str | None) -> float | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class GroupSink:
    """The timeline's sink for one step on a group of Brownout sidecars."""

    def __init__(self, group: str, targets: str, sidecars: Sequence[str], clients: Mapping[str, AdminClient], *,
                 lead_s: float, min_armed: int, where: str) -> None:
        self.name = group
        self.targets = targets
        self.sidecars = tuple(sidecars)
        self.lead_s = lead_s
        self.min_armed = min_armed
        self.where = where
        self._clients = clients
        self._faults: dict[str, _Fault] = {}

    async def _each(self, sidecars: Sequence[str], call: Callable[[AdminClient], Awaitable[T]]
                    ) -> list[tuple[str, T | BaseException]]:
        results = await asyncio.gather(*(call(self._clients[s]) for s in sidecars), return_exceptions=True)
        for result in results:  # a bug is not a sidecar's failure: let it out
            if isinstance(result, BaseException) and not isinstance(result, BrownoutError):
                raise result
        return list(zip(sidecars, results, strict=True))

    def _short(self, fault: _Fault, what: str, errors: Mapping[str, BaseException]) -> BrownoutError:
        detail = "; ".join(f"{s}: {e}" for s, e in errors.items())
        kind = Unreachable if any(isinstance(e, Unreachable) for e in errors.values()) else type(
            next(iter(errors.values())))
        message = (f"{self.where}: {what}: {len(fault.armed)} of {len(self.sidecars)} sidecars hold the fault, "
                   f"min_armed is {self.min_armed} ({detail})")
        try:
            return kind(message)  # type: ignore[return-value, call-arg]
        except TypeError:
            return Unreachable(message)

    async def add(self, body: Mapping[str, Any], window: Window | None) -> str:
        fault_id = str(body["id"])
        fault = self._faults[fault_id] = _Fault(window)
        payload = dict(body)
        if window is not None:
            payload.update({k: v for k, v in (("start_at", window.start_at), ("end_at", window.end_at))
                            if v is not None})
        errors: dict[str, BaseException] = {}
        for sidecar, result in await self._each(self.sidecars, lambda c: c.add_fault(payload)):
            if isinstance(result, BaseException):
                errors[sidecar] = result
                fault.failed[sidecar] = f"not armed: {result}"
                continue
            fault.armed.append(sidecar)
            if result.get("state", "active") == "active":
                fault.activated[sidecar] = wall_time(result.get("activated_at") or result.get("created_at")) or 0.0
        if len(fault.armed) < self.min_armed:
            armed = list(fault.armed)
            await self._each(armed, lambda c: c.remove_fault(fault_id))  # best effort: leases cover the rest
            fault.armed.clear()
            raise self._short(fault, f"could not arm {len(errors)} sidecar(s), removed it from the {len(armed)} armed",
                              errors)
        if errors:
            log.warning("fleet_partly_armed", step=self.where, armed=len(fault.armed), failed=sorted(errors))
        return fault_id

    async def confirm(self, fault_id: str, *, patience_s: float = 2.0, poll_s: float = 0.02) -> None:
        """After ``start_at``: read each armed sidecar's activation time (the arm skew)."""
        fault = self._faults[fault_id]
        deadline = asyncio.get_running_loop().time() + patience_s
        while pending := [s for s in fault.armed if s not in fault.activated]:
            lost: dict[str, BaseException] = {}
            for sidecar, result in await self._each(pending, lambda c: c.get_fault(fault_id)):
                if isinstance(result, BaseException):
                    lost[sidecar] = result
                    fault.armed.remove(sidecar)
                    fault.failed[sidecar] = f"lost before it started: {result}"
                elif result.get("activated_at"):
                    fault.activated[sidecar] = wall_time(result["activated_at"]) or 0.0
            if lost and len(fault.armed) < self.min_armed:
                raise self._short(fault, "lost sidecars as the fault started", lost)
            if asyncio.get_running_loop().time() > deadline:
                for sidecar in pending:
                    if sidecar not in fault.activated and sidecar in fault.armed:
                        fault.failed[sidecar] = f"still staged {patience_s:g}s after start_at (its clock behind?)"
                return
            if any(s not in fault.activated for s in fault.armed):
                await asyncio.sleep(poll_s)

    async def renew(self, fault_id: str, ttl: float) -> None:
        fault = self._faults[fault_id]
        lost: dict[str, BaseException] = {}
        for sidecar, result in await self._each(list(fault.armed), lambda c: c.renew(fault_id, ttl)):
            if isinstance(result, (NotFound, Unreachable)):
                lost[sidecar] = result
                fault.armed.remove(sidecar)
                fault.failed[sidecar] = f"lost while in force: {result}"
            elif isinstance(result, BaseException):
                log.warning("lease_renewal_failed", fault_id=fault_id, sidecar=sidecar, error=str(result))
        if not fault.armed and lost and all(isinstance(e, NotFound) for e in lost.values()):
            raise NotFound(f"fault {fault_id} is gone from every sidecar (lease ran out, or the kill switch)")
        if any(isinstance(e, Unreachable) for e in lost.values()) and len(fault.armed) < self.min_armed:
            raise self._short(fault, "a sidecar became unreachable", lost)

    async def remove(self, fault_id: str) -> None:
        fault = self._faults[fault_id]
        armed, fault.armed = list(fault.armed), []
        unreachable: dict[str, BaseException] = {}
        for sidecar, result in await self._each(armed, lambda c: c.remove_fault(fault_id)):
            if isinstance(result, NotFound):
                continue  # already gone: its lease ran out, or the kill switch was used
            if isinstance(result, BaseException):
                unreachable[sidecar] = result
                fault.failed[sidecar] = f"not removed: {result}"
            elif result.get("ended_at"):
                fault.ended[sidecar] = wall_time(result["ended_at"]) or 0.0
        if unreachable:
            detail = "; ".join(f"{s}: {e}" for s, e in unreachable.items())
            raise Unreachable(f"could not remove fault {fault_id} from {len(unreachable)} sidecar(s): {detail}")

    def report(self, fault_id: str) -> Arming | None:
        fault = self._faults.get(fault_id)
        if fault is None:
            return None
        window = fault.window or Window()
        return Arming(group=self.name, targets=self.targets, sidecars=self.sidecars, start_at=window.start_at,
                      end_at=window.end_at, lead_s=self.lead_s if fault.window else 0.0,
                      activated=dict(fault.activated), ended=dict(fault.ended), failed=dict(fault.failed))
