"""The fleet in words: the timeline event of preflight, and the dry run's plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brownout.fleet.sink import GroupSink

if TYPE_CHECKING:
    from brownout.runner.plan import Plan


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
            staged = f"stage at +{max(0.0, fault.at - fault.lead_s):.3f}s, " if fault.synchronized else "add at "
            lines.append(f"method[{fault.step}] {fault.body['type']}@{fault.body['route']} on {sink.name} "
                         f"({sink.targets}; min_armed {sink.min_armed}): {staged}start at +{fault.at:g}s, "
                         f"end at +{end:g}s")
            lines += [f"    {admin}" for admin in sink.sidecars]
        else:
            lines.append(f"method[{fault.step}] {fault.body['type']}@{fault.body['route']} on {sink.name}: "
                         f"add at +{fault.at:g}s, remove at +{end:g}s")
    for action in timeline.actions:
        lines.append(f"method[{action.step}] {action.name}@{action.target} at +{action.at:g}s")
    return lines
