"""Adding, changing and removing faults: the logic behind the admin API and config ``faults:``.

HTTP routes get catalogue faults; tcp routes get Toxiproxy toxics (owned by the tcp layer,
leased here), so one API and one kill switch serve both kinds of route.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from faults import build_fault, build_match, known_kinds
from faults.errors import Conflict, InvalidInput
from proxy.config import FaultTtlConfig, ProxyConfig, RouteConfig
from proxy.fault_requests import FaultPatch, FaultRequest
from proxy.leases import ActiveFault, FaultStore

MAX_AHEAD_S = 3600.0  # start_at at most an hour ahead: further is a clock problem or a typo
MAX_LATE_S = 60.0  # start_at at most a minute past (a late request starts the fault at once)
MAX_SPAN_S = 86400.0  # end_at at most a day after the fault starts (the lease bounds it anyway)


class ToxicBackend(Protocol):
    """What the fault service needs from the tcp layer."""

    def toxic_types(self) -> list[str]: ...

    async def add_leased_toxic(self, route: str, toxic_type: str, params: Mapping[str, Any], name: str) -> dict[str, Any]: ...

    async def remove_leased_toxic(self, route: str, name: str) -> None: ...


class FaultService:
    def __init__(self, config: ProxyConfig, store: FaultStore, tcp: ToxicBackend | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._routes = {r.name: r for r in config.routes}
        self._ttl: FaultTtlConfig = config.fault_ttl
        self.store = store
        self.tcp = tcp
        self.toxic_params: dict[str, dict[str, Any]] = {}

    def route_kind(self, name: str) -> str:
        route = self._routes.get(name)
        if route is None:
            raise InvalidInput(f"unknown route {name!r}; routes: {', '.join(sorted(self._routes))}", "route")
        return route.kind

    def add_route(self, name: str, kind: str) -> None:
        """Routes created at run time (Toxiproxy API proxies) accept faults too."""
        if name not in self._routes:
            self._routes[name] = RouteConfig.model_construct(name=name, kind=kind, listen="", upstream="")

    def _lease(self, ttl: float | None, static: bool) -> float | None:
        if static:
            return None
        if ttl is None:
            return self._ttl.default
        if ttl <= 0:
            raise InvalidInput("must be > 0", "ttl")
        if ttl > self._ttl.max:
            raise InvalidInput(f"must be <= the maximum lease of {self._ttl.max:g}s", "ttl")
        return ttl

    def _check_window(self, request: FaultRequest, kind: str, static: bool) -> None:
        """``start_at``/``end_at``: finite (parsed), within bounds of this proxy's clock, in order."""
        if request.start_at is None and request.end_at is None:
            return
        field = "start_at" if request.start_at is not None else "end_at"
        if static:
            raise InvalidInput("a fault of the config file is in force from the start; "
                               "start_at and end_at are for the admin API", field)
        if kind != "http":
            raise InvalidInput("a tcp toxic starts when it is added; start_at and end_at are for http routes", field)
        now = self._wall()
        if request.start_at is not None:
            if request.start_at > now + MAX_AHEAD_S:
                raise InvalidInput(f"must be at most {MAX_AHEAD_S:g}s ahead of this proxy's clock "
                                   f"({request.start_at - now:.3f}s ahead)", "start_at")
            if request.start_at < now - MAX_LATE_S:
                raise InvalidInput(f"is {now - request.start_at:.3f}s in the past on this proxy's clock "
                                   f"(at most {MAX_LATE_S:g}s is taken as 'now'): are the clocks in sync?",
                                   "start_at")
        begin = max(now, request.start_at if request.start_at is not None else now)
        if request.end_at is not None:
            if request.end_at <= begin:
                raise InvalidInput("must be after start_at and after this proxy's now", "end_at")
            if request.end_at > begin + MAX_SPAN_S:
                raise InvalidInput(f"must be at most {MAX_SPAN_S:g}s after the fault starts", "end_at")

    async def add(self, request: FaultRequest, *, static: bool = False) -> ActiveFault:
        kind = self.route_kind(request.route)
        ttl = self._lease(request.ttl, static)
        self._check_window(request, kind, static)
        match = build_match(request.match)
        if kind == "http":
            fault = build_fault(request.type, request.params)
            return self.store.add(
                fault_id=request.id, fault_type=request.type, route=request.route, fault=fault,
                match=match, ttl=ttl, seed=request.seed, start_at=request.start_at, end_at=request.end_at,
            )
        return await self._add_toxic(request, ttl, match)

    async def _add_toxic(self, request: FaultRequest, ttl: float | None, match: Any) -> ActiveFault:
        if self.tcp is None:
            raise InvalidInput("tcp routes are not served by this proxy", "route")
        if request.type not in self.tcp.toxic_types():
            raise InvalidInput(
                f"unknown toxic type {request.type!r} for tcp route {request.route!r}; "
                f"known types: {', '.join(self.tcp.toxic_types())}", "type")
        if request.match:
            raise InvalidInput("tcp routes have no request to match; use params.toxicity", "match")
        fault_id = request.id or self.store.new_id(request.type)
        if fault_id in self.store:
            raise Conflict(f"a fault with id {fault_id!r} already exists")
        shown = await self.tcp.add_leased_toxic(request.route, request.type, request.params, fault_id)
        route, tcp = request.route, self.tcp
        active = self.store.add(
            fault_id=fault_id, fault_type=request.type, route=route, fault=None, match=match, ttl=ttl,
            seed=request.seed, on_remove=lambda: tcp.remove_leased_toxic(route, fault_id),
        )
        self.toxic_params[fault_id] = shown
        return active

    async def patch(self, fault_id: str, patch: FaultPatch) -> ActiveFault:
        active = self.store.get(fault_id)
        if patch.params is not None:
            if active.fault is None:
                raise InvalidInput("change a toxic's attributes through the Toxiproxy API", "params")
            self.store.replace_fault(fault_id, build_fault(active.type, {**active.fault.params(), **patch.params}))
        if patch.ttl is not None:
            self.store.renew(fault_id, self._lease(patch.ttl, static=False) or self._ttl.default)
        return active

    async def remove(self, fault_id: str) -> ActiveFault:
        active = await self.store.remove(fault_id)
        self.toxic_params.pop(fault_id, None)
        return active

    async def clear(self, *, tcp_too: bool = True) -> list[ActiveFault]:
        """The kill switch: every fault on every route, now; every tcp route enabled again."""
        removed = await self.store.clear()
        self.toxic_params.clear()
        if tcp_too and self.tcp is not None:
            await self.tcp.reset(notify=False)
        return removed

    def describe(self, active: ActiveFault) -> dict[str, Any]:
        shown = active.as_json()
        if active.fault is None:
            shown["params"] = self.toxic_params.get(active.id, {})
        return shown

    def known_types(self) -> list[str]:
        return known_kinds() + (self.tcp.toxic_types() if self.tcp else [])

