"""Preflight of the fleet: resolve every ``proxies:`` entry, check each sidecar answers and
serves the routes the method names, measure round trips, pick each step's targets and make
its sink. Read-only on the sidecars (GETs), so ``--dry-run`` runs it too.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from brownout.admin_client import AdminClient
from brownout.experiment.model import Experiment, FaultStep
from brownout.experiment.steady import ROUTE_BOUNDS
from brownout.fleet.discovery import Group, resolve_group
from brownout.fleet.records import FleetRecord, GroupRecord
from brownout.fleet.sink import GroupSink
from brownout.fleet.targets import check_step, choose
from brownout.runner.sinks import ToxiproxySink
from brownout.runner.timeline import FaultSink, PlannedFault
from brownout.toxiproxy_adapter import ToxiproxyAdapter
from faults.errors import Unreachable

MIN_LEAD_S = 0.1  # the fan-out of one process to a few dozen sidecars on a busy machine
MAX_LEAD_S = 5.0
RTT_SAMPLES = 3


def lead_for(rtt_s: float, members: int) -> float:
    """How far ahead a step is staged: a few round trips, one more per member (the calls share
    one event loop), never under ``MIN_LEAD_S``."""
    return round(min(MAX_LEAD_S, max(MIN_LEAD_S, (3 + members) * rtt_s)), 3)


def describe_targets(step: FaultStep, chosen: int, size: int) -> str:
    t = step.targets
    mode = t.mode if t.value is None else f"{t.mode} {t.value:g}"
    return f"{mode}: {chosen} of {size}"


@dataclass
class FleetPreflight:
    groups: list[Group]
    record: FleetRecord
    faults: list[PlannedFault]
    clients: dict[str, AdminClient]

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def _rtt(client: AdminClient) -> tuple[float, dict[str, str]]:
    """The median of a few GET /healthz round trips, and the routes the sidecar serves."""
    samples = []
    for _ in range(RTT_SAMPLES):
        started = time.perf_counter()
        await client.health()
        samples.append(time.perf_counter() - started)
    routes = {r["name"]: r.get("kind", "http") for r in await client.routes()}
    return statistics.median(samples), routes


def _check_route_bounds(experiment: Experiment, routes: dict[str, dict[str, str]]) -> None:
    """The SLA's per-route bounds name http routes some sidecar serves (they are judged on its counters)."""
    http = {name for served in routes.values() for name, kind in served.items() if kind == "http"}
    sla = experiment.steady_state.sla
    for key in ROUTE_BOUNDS:
        for route in getattr(sla, key):
            if route not in http:
                raise Unreachable(f"steady_state.sla.{key}: route {route!r} is not an http route of any proxy "
                                  f"(they serve: {', '.join(sorted(http)) or 'none'})")


async def prepare_fleet(experiment: Experiment, run_id: str, *,
                        say: Callable[[str], None] | None = None) -> FleetPreflight:
    """Resolve, check and plan every fault step; raises Unreachable (exit 4) or InvalidInput (3)."""
    groups = list(await asyncio.gather(*(resolve_group(i, ref) for i, ref in enumerate(experiment.proxies))))
    clients: dict[str, AdminClient] = {}
    for group, ref in zip(groups, experiment.proxies, strict=True):
        if group.how != "toxiproxy":
            for admin in group.admins:
                clients.setdefault(admin, AdminClient(admin, ref.token))
    prepared = FleetPreflight(groups, FleetRecord((), 0.0), [], clients)
    try:
        await _check(experiment, prepared, groups, say, run_id)
    except BaseException:
        await prepared.close()
        raise
    return prepared


def fault_body(step: FaultStep, fault_id: str, seed: int) -> dict[str, Any]:
    """The admin API body of a step (the same on every sidecar it goes to)."""
    body: dict[str, Any] = {"type": step.fault, "route": step.route, "params": dict(step.params), "id": fault_id,
                            "seed": step.seed if step.seed is not None else seed}
    if step.match:
        body["match"] = dict(step.match)
    return body


async def _check(experiment: Experiment, prepared: FleetPreflight, groups: list[Group],
                 say: Callable[[str], None] | None, run_id: str) -> None:
    admins = list(prepared.clients)
    answers = await asyncio.gather(*(_rtt(prepared.clients[a]) for a in admins), return_exceptions=True)
    rtt: dict[str, float] = {}
    routes: dict[str, dict[str, str]] = {}  # sidecar → its routes' kinds
    for admin, answer in zip(admins, answers, strict=True):
        if isinstance(answer, BaseException):
            if isinstance(answer, Unreachable):
                raise Unreachable(f"sidecar {admin} is unreachable: {answer}") from None
            raise answer
        rtt[admin], routes[admin] = answer
    for group in groups:
        if group.how == "toxiproxy":
            routes[group.admins[0]] = dict.fromkeys(await ToxiproxyAdapter.from_url(group.source).proxies(), "tcp")
    _check_route_bounds(experiment, routes)
    records = tuple(GroupRecord(g.index, g.label, g.how, g.source, g.admins,
                                {a: round(rtt[a] * 1000, 3) for a in g.admins if a in rtt}) for g in groups)
    worst = max(rtt.values(), default=0.0)
    biggest = max((len(g.sidecars) for g in groups), default=1)
    lead = lead_for(worst, biggest)
    prepared.record = FleetRecord(records, lead)
    if say is not None:
        for group in groups:
            say(f"proxies[{group.index}] {group.label} ({group.how} {group.source}): "
                f"{len(group.sidecars)} sidecar(s): {', '.join(group.admins)}")
    sinks: dict[int, FaultSink] = {}
    for step_index, step in experiment.fault_steps:
        group = groups[experiment.proxy_index(step) or 0]
        where = f"method[{step_index}]"
        for admin in group.admins:
            if step.route not in routes[admin]:
                served = ", ".join(sorted(routes[admin])) or "none"
                raise Unreachable(f"{where}: route {step.route!r} is not served by {admin} (it serves: {served})")
        size = len(group.sidecars)
        check_step(size, step.targets, experiment.safety, where)
        chosen = choose(size, step.targets, seed=experiment.seed, step=step_index, where=where)
        members = tuple(group.admins[i] for i in chosen)
        if group.how == "toxiproxy":
            sink = sinks.setdefault(group.index, ToxiproxySink(group.source))
        else:
            sink = GroupSink(group.label, describe_targets(step, len(members), size), members, prepared.clients,
                             lead_s=lead, min_armed=step.targets.min_armed or len(members), where=where)
        body = fault_body(step, f"run-{run_id}-step{step_index}", experiment.seed + step_index)
        prepared.faults.append(PlannedFault(step=step_index, at=step.at, duration=step.duration, sink=sink,
                                            body=body, synchronized=not step.is_toxic))
