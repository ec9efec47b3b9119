"""The fleet in words: the timeline event of preflight, and the dry run's plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from brownout.fleet.records import Arming, FleetRecord
from brownout.fleet.sink import GroupSink
from brownout.observe.sidecars import SidecarReader

if TYPE_CHECKING:
    from brownout.runner.plan import Plan


def fleet_admins(plan: Plan) -> tuple[str, ...]:
    """Every Brownout sidecar of the fleet as resolved at preflight (each once, in group order)."""
    record = plan.fleet
    if record is None:
        return ()
    return tuple(dict.fromkeys(a for g in record.groups if g.how != "toxiproxy" for a in g.sidecars))


def read_resolved_fleet(observers: Sequence[object], plan: Plan) -> None:
    """The sidecar reader reads every sidecar resolved at preflight (a discovered group is known
    only then), not just the URLs written in the file."""
    for observer in observers:
        if isinstance(observer, SidecarReader):
            observer.admins = fleet_admins(plan)


def fleet_event(plan: Plan) -> dict[str, Any]:
    """The ``fleet_resolved`` event's detail: each group's sidecars and each step's targets."""
    record = plan.fleet
    groups = {g.label: list(g.sidecars) for g in record.groups} if record is not None else {}
    steps = {f"method[{f.step}]": list(f.sink.sidecars) for f in plan.timeline.faults if isinstance(f.sink, GroupSink)}
    return {"groups": groups, "steps": steps, "lead_s": record.lead_s if record is not None else 0.0}


def dry_run_lines(plan: Plan) -> list[str]:
    """Which sidecars each step would hit, and when each would be staged, started and ended
    (seconds from the method's start, as the timeline would play them)."""
    timeline = plan.timeline
    lines = [f"method: {timeline.method_s:g}s after a {plan.baseline_s:g}s baseline; "
             f"faults staged {plan.fleet.lead_s * 1000 if plan.fleet else 0:.0f} ms ahead of their start"]
    for fault in sorted(timeline.faults, key=lambda f: (f.at, f.step)):
        end = timeline.fault_end(fault)
        sink = fault.sink
        if isinstance(sink, GroupSink):
            # the method's first faults start a lead late: they are staged as the method starts
            start = max(fault.at, fault.lead_s)
            staged = f"stage at +{max(0.0, fault.at - fault.lead_s):.3f}s, " if fault.synchronized else "add at "
            lines.append(f"method[{fault.step}] {fault.body['type']}@{fault.body['route']} on {sink.name} "
                         f"({sink.targets}; min_armed {sink.min_armed}): {staged}start at +{start:g}s, "
                         f"end at +{end:g}s")
            lines += [f"    {admin}" for admin in sink.sidecars]
        else:
            lines.append(f"method[{fault.step}] {fault.body['type']}@{fault.body['route']} on {sink.name}: "
                         f"add at +{fault.at:g}s, remove at +{end:g}s")
    for action in timeline.actions:
        lines.append(f"method[{action.step}] {action.name}@{action.target} at +{action.at:g}s")
    return lines


def fleet_lines(record: FleetRecord) -> list[str]:
    """The summary's fleet block: each group as resolved at preflight."""
    lines = ["  fleet (resolved at preflight):"]
    for g in record.groups:
        lines.append(f"    proxies[{g.index}] {g.label} ({g.how}): {len(g.sidecars)} sidecar(s)")
        lines += [f"      {admin}" + (f"  rtt {g.rtt_ms[admin]:.1f} ms" if admin in g.rtt_ms else "")
                  for admin in g.sidecars]
    return lines


def fleet_injection_lines(arming: Arming | None) -> list[str]:
    """Under an injection on a group: who got it, and how close together they started and ended."""
    if arming is None or (arming.targets.endswith(" 1 of 1") and not arming.failed):
        return []  # a single proxy: nothing to say
    skews = []
    if arming.arm_skew_ms is not None:
        skews.append(f"arm skew {arming.arm_skew_ms:.2f} ms")
    if arming.disarm_skew_ms is not None:
        skews.append(f"disarm skew {arming.disarm_skew_ms:.2f} ms")
    lines = [f"      {arming.group} ({arming.targets})" + (f": {', '.join(skews)}" if skews else "")]
    lines += [f"        {admin}" for admin in arming.sidecars]
    lines += [f"        {admin}: {why}" for admin, why in arming.failed.items()]
    return lines
