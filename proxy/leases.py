"""Active faults and their leases.

Every fault added through the API is a lease: it expires unless renewed, so a runner that
dies cannot leave faults behind. Faults from the config file are static (never expire).
The per-route tuples read by the data path are rebuilt on every change (copy on write), so a
request reads one tuple and never takes a lock. Connection-phase faults (whose hooks include
``on_connection``) have their own tuple, read once per accepted connection, so the request
path pays nothing for them.

A fault may be staged (``start_at``): it is stored at once but joins the per-route tuples only
when a timer on the event loop fires at ``start_at`` (wall clock, converted once to the loop's
monotonic clock), so every proxy of a fleet staged ahead of time starts it at the same moment,
whatever the HTTP calls took. ``end_at`` takes it out of the tuples the same way; an ended fault
stays listed (``state: ended``) until it is removed or its lease runs out. A staged fault's
lease counts from ``start_at``, so staging ahead never eats into it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from faults import Exchange, ExchangeData, Fault, Hook, Match
from faults.catalogue import check_match
from faults.errors import Conflict, InvalidInput, NotFound
from proxy.flow import wake

log = structlog.get_logger("brownout.leases")

# What a connection-phase fault cannot match on: nothing of a request is known yet.
_REQUEST_CONDITIONS = ("methods", "path", "headers", "body")


@dataclass(eq=False)
class ActiveFault:
    """One fault in force on one route: the kind's parameters plus runtime state."""

    id: str
    type: str
    route: str
    fault: Fault | None  # None for tcp toxics, which the tcp layer owns
    match: Match
    created_at: float  # wall clock, for the API
    expires_at: float | None  # wall clock; None when static
    seed: int
    rng: random.Random = field(repr=False)
    hooks: frozenset[Hook] = frozenset()
    needs_body: bool = False  # the request's JSON body is read before selection (match or fault needs it)
    state: Any = field(default=None, repr=False)  # the kind's state across exchanges (``ex.state``)
    seen: int = 0
    injections: int = 0
    on_remove: Callable[[], Any] | None = field(default=None, repr=False)
    start_at: float | None = None  # wall clock; None: in force from created_at
    end_at: float | None = None
    activated_at: float | None = None  # when it came into force (wall clock); None while staged
    ended_at: float | None = None  # when it stopped being in force (end_at, or removal)
    # True once the fault is no longer in force (ended or removed); ``_sleepers`` are woken then, at once
    _removed: bool = field(default=False, repr=False)
    _sleepers: set[asyncio.Future[None]] = field(default_factory=set, repr=False)
    _timers: list[Any] = field(default_factory=list, repr=False)

    @property
    def removed(self) -> bool:
        return self._removed

    @property
    def lifecycle(self) -> str:
        """``staged`` (waiting for start_at), ``active`` (in force) or ``ended``."""
        if self.ended_at is not None:
            return "ended"
        return "active" if self.activated_at is not None else "staged"

    async def sleep(self, seconds: float) -> None:
        """Sleep on behalf of this fault; removing the fault wakes every sleeper at once."""
        if seconds <= 0 or self._removed:
            return
        # One future, woken by a timer or by the removal: no inner task (as ``wait_for`` makes), so
        # a client that leaves cancels this sleep directly and the handler's cleanup runs at once.
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, wake, waiter) if seconds != float("inf") else None
        self._sleepers.add(waiter)
        try:
            await waiter
        finally:
            self._sleepers.discard(waiter)
            if timer is not None:
                timer.cancel()

    def _stop_sleepers(self) -> None:
        """No longer in force: every sleep on its behalf ends now."""
        self._removed = True
        for waiter in self._sleepers:
            wake(waiter)

    @property
    def connection_phase(self) -> bool:
        return Hook.ON_CONNECTION in self.hooks

    def view(self, data: ExchangeData) -> Exchange:
        """This fault's view of an exchange: its own rng, sleep and state."""
        return Exchange(data, rng=self.rng, sleep=self.sleep, state=self.state)

    def decide_connection(self) -> bool:
        """Once per accepted connection (connection-phase faults): the counts and probability."""
        self.seen += 1
        if self.match.decide(self.seen, self.injections, self.rng):
            self.injections += 1
            return True
        return False

    def decide(self, method: str, path: str, headers: Any, json_body: Any) -> bool:
        """Once per request: does this fault apply? Updates the match counters."""
        if not self.match.matches_request(method, path, headers, json_body):
            return False
        self.seen += 1
        if self.match.decide(self.seen, self.injections, self.rng):
            self.injections += 1
            return True
        return False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "route": self.route,
            "params": self.fault.params() if self.fault is not None else {},
            "match": self.match.as_dict(),
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at) if self.expires_at is not None else None,
            "injections": self.injections,
            "seed": self.seed,
            "state": self.lifecycle,
            "start_at": _iso_us(self.start_at),
            "end_at": _iso_us(self.end_at),
            "activated_at": _iso_us(self.activated_at),
            "ended_at": _iso_us(self.ended_at),
        }


def check_hooks(fault: Fault, match: Match) -> frozenset[Hook]:
    """The hooks ``fault`` uses, checked against ``match``: a connection-phase fault runs before
    any request is read, so it can match only on probability and counts."""
    hooks = fault.hooks()
    if Hook.ON_CONNECTION in hooks:
        if hooks != {Hook.ON_CONNECTION}:
            raise TypeError(f"{type(fault).__name__}: a fault that uses on_connection uses no other hook")
        for key in _REQUEST_CONDITIONS:
            if getattr(match, key) is not None:
                raise InvalidInput("a connection-phase fault matches only on probability and counts", f"match.{key}")
    return hooks


def _needs_body(fault: Fault | None, match: Match) -> bool:
    return match.needs_body or (fault is not None and fault.needs_request_json())


def path_filter(faults: tuple[ActiveFault, ...]) -> re.Pattern[str] | None:
    """One regex matching every path that any of ``faults`` could apply to: the request path
    rules most requests out in one call. None when a fault has no path glob (matches any path)."""
    if not faults or any(f.match.path is None for f in faults):
        return None
    try:
        return re.compile("|".join(fnmatch.translate(f.match.path) for f in faults if f.match.path is not None))
    except re.error:  # (fnmatch of Python < 3.11 names its groups, which clash when joined)
        return None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def _iso_us(ts: float | None) -> str | None:
    """Microseconds: a fleet's arm skew is read from these."""
    if ts is None:
        return None
    whole = int(ts // 1)
    micros = min(int(round((ts - whole) * 1e6)), 999_999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


class FaultStore:
    """All active faults, by id and by route, with lease expiry."""

    def __init__(self, *, seed: int | None = None, wall: Callable[[], float] = time.time,
                 call_later: Callable[..., Any] | None = None) -> None:
        self._call_later = call_later  # None: the running loop's (tests pass a fake clock's)
        self._by_id: dict[str, ActiveFault] = {}
        self._http_by_route: dict[str, tuple[ActiveFault, ...]] = {}
        self._connection_by_route: dict[str, tuple[ActiveFault, ...]] = {}
        self._seed_source = random.Random(seed)
        self._ids = itertools.count(1)
        self._wall = wall
        self._listeners: list[Callable[[str], None]] = []
        self._sweeper: asyncio.Task[None] | None = None

    # -- reads (the request path uses only ``for_route``)

    def for_route(self, route: str) -> tuple[ActiveFault, ...]:
        """The request-phase faults of ``route``."""
        return self._http_by_route.get(route, ())

    def for_connections(self, route: str) -> tuple[ActiveFault, ...]:
        """The connection-phase faults of ``route``."""
        return self._connection_by_route.get(route, ())

    def __contains__(self, fault_id: object) -> bool:
        return fault_id in self._by_id

    def get(self, fault_id: str) -> ActiveFault:
        try:
            return self._by_id[fault_id]
        except KeyError:
            raise NotFound(f"no fault with id {fault_id!r}") from None

    def all(self) -> list[ActiveFault]:
        return list(self._by_id.values())

    def count_for(self, route: str) -> int:
        """Faults in force on ``route`` (staged and ended ones are not)."""
        return sum(1 for f in self._by_id.values() if f.route == route and f.lifecycle == "active")

    # -- writes

    def new_id(self, fault_type: str) -> str:
        while True:
            candidate = f"{fault_type}-{next(self._ids)}"
            if candidate not in self._by_id:
                return candidate

    def new_seed(self) -> int:
        return self._seed_source.randrange(2**32)

    def add(
        self, *, fault_id: str | None, fault_type: str, route: str, fault: Fault | None, match: Match,
        ttl: float | None, seed: int | None, on_remove: Callable[[], Any] | None = None,
        start_at: float | None = None, end_at: float | None = None,
    ) -> ActiveFault:
        """Add a fault; with ``start_at`` in the future it is staged until then (see the module)."""
        fault_id = fault_id or self.new_id(fault_type)
        if fault_id in self._by_id:
            raise Conflict(f"a fault with id {fault_id!r} already exists")
        hooks = check_hooks(fault, match) if fault is not None else frozenset()
        if fault is not None:
            check_match(fault, match)
        seed = self.new_seed() if seed is None else seed
        now = self._wall()
        begin = max(now, start_at if start_at is not None else now)
        active = ActiveFault(
            id=fault_id, type=fault_type, route=route, fault=fault, match=match, created_at=now,
            expires_at=None if ttl is None else begin + ttl, seed=seed, rng=random.Random(seed),
            hooks=hooks, state=fault.new_state() if fault is not None else None, on_remove=on_remove,
            needs_body=_needs_body(fault, match), start_at=start_at, end_at=end_at,
        )
        if begin <= now:
            active.activated_at = now
        else:
            self._at(active, begin - now, self._activate)
        if end_at is not None:
            self._at(active, end_at - now, self._end)
        self._by_id[fault_id] = active
        self._rebuild(route)
        return active

    def _at(self, active: ActiveFault, delay: float, action: Callable[[ActiveFault], None]) -> None:
        # call_later runs on the loop's monotonic clock: a wall-clock step after staging does
        # not move the moment, and the timer fires within the loop's resolution (about 1 ms).
        call_later = self._call_later or asyncio.get_running_loop().call_later
        active._timers.append(call_later(max(delay, 0.0), action, active))

    def _activate(self, active: ActiveFault) -> None:
        if self._by_id.get(active.id) is not active or active.lifecycle != "staged":
            return
        now = self._wall()
        if active.start_at is not None and now < active.start_at:  # the loop's timers round to 1 ms
            self._at(active, active.start_at - now, self._activate)
            return
        active.activated_at = now
        self._rebuild(active.route)
        log.info("fault_activated", fault_id=active.id, route=active.route, start_at=active.start_at,
                 late_ms=round((active.activated_at - (active.start_at or active.activated_at)) * 1000, 3))

    def _end(self, active: ActiveFault) -> None:
        if self._by_id.get(active.id) is not active or active.lifecycle == "ended":
            return
        now = self._wall()
        if active.end_at is not None and now < active.end_at:
            self._at(active, active.end_at - now, self._end)
            return
        active.ended_at = now
        active._stop_sleepers()
        self._rebuild(active.route)
        log.info("fault_ended", fault_id=active.id, route=active.route, end_at=active.end_at)

    def renew(self, fault_id: str, ttl: float) -> ActiveFault:
        active = self.get(fault_id)
        if active.expires_at is None:
            raise Conflict(f"fault {fault_id!r} comes from the config file and has no lease to renew")
        now = self._wall()
        active.expires_at = max(now, active.start_at if active.start_at is not None else now) + ttl
        return active

    def replace_fault(self, fault_id: str, fault: Fault) -> ActiveFault:
        """New parameters, same id, counters, lease and state (which the new parameters may adapt)."""
        active = self.get(fault_id)
        hooks = check_hooks(fault, active.match)
        if active.state is not None:
            fault.reconfigure_state(active.state)
        active.fault, active.hooks = fault, hooks
        active.needs_body = _needs_body(fault, active.match)
        self._rebuild(active.route)
        return active

    async def remove(self, fault_id: str) -> ActiveFault:
        active = self.get(fault_id)
        del self._by_id[fault_id]
        for timer in active._timers:
            timer.cancel()
        if active.ended_at is None:
            active.ended_at = self._wall()
        self._rebuild(active.route)
        active._stop_sleepers()
        if active.on_remove is not None:
            result = active.on_remove()
            if asyncio.iscoroutine(result):
                await result
        return active

    async def clear(self, only: Iterable[str] | None = None) -> list[ActiveFault]:
        ids = list(self._by_id) if only is None else [i for i in only if i in self._by_id]
        return [await self.remove(i) for i in ids]

    async def expire(self) -> list[ActiveFault]:
        now = self._wall()
        expired = [f.id for f in self._by_id.values() if f.expires_at is not None and f.expires_at <= now]
        return await self.clear(expired)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """``listener(route)`` runs after every change (the metrics gauge uses it)."""
        self._listeners.append(listener)

    def _rebuild(self, route: str) -> None:
        faults = [f for f in self._by_id.values()
                  if f.route == route and f.fault is not None and f.lifecycle == "active"]
        self._http_by_route[route] = tuple(f for f in faults if not f.connection_phase)
        self._connection_by_route[route] = tuple(f for f in faults if f.connection_phase)
        for listener in self._listeners:
            listener(route)

    # -- lifecycle

    def start_sweeper(self, interval: float = 0.1) -> None:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.expire()

        self._sweeper = asyncio.get_running_loop().create_task(sweep(), name="lease-sweeper")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
        await self.clear()
