"""What the journal keeps of a fleet: the groups as resolved, and each step's arming."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CLOCK_NOTE = ("each sidecar starts and ends a staged fault on its own clock, so the arm and disarm skews are "
              "spreads of the sidecars' own times: across machines they include the machines' clock error")


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def _spread_ms(times: Mapping[str, float]) -> float | None:
    return round((max(times.values()) - min(times.values())) * 1000, 3) if times else None


@dataclass(frozen=True)
class GroupRecord:
    """A ``proxies:`` entry as resolved at preflight."""

    index: int
    label: str
    how: str  # admin | list | discover | toxiproxy
    source: str
    sidecars: tuple[str, ...]
    rtt_ms: Mapping[str, float] = field(default_factory=dict)  # median GET /healthz round trip per sidecar

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "how": self.how, "source": self.source,
                "sidecars": list(self.sidecars), "rtt_ms": dict(self.rtt_ms)}


@dataclass(frozen=True)
class FleetRecord:
    groups: tuple[GroupRecord, ...]
    lead_s: float  # how far ahead of its start a fault is staged
    note: str = CLOCK_NOTE

    def as_dict(self) -> dict[str, Any]:
        return {"groups": [g.as_dict() for g in self.groups], "lead_s": self.lead_s, "clock_note": self.note}


@dataclass(frozen=True)
class Arming:
    """One step's fault on the members of a group: chosen, staged, activated, ended."""

    group: str
    targets: str  # e.g. "percent 40: 2 of 5"
    sidecars: tuple[str, ...]  # the chosen members, sorted by address
    start_at: float | None = None  # wall clock; None: started when added (tcp toxics)
    end_at: float | None = None
    lead_s: float = 0.0
    activated: Mapping[str, float] = field(default_factory=dict)  # sidecar → its own activation time
    ended: Mapping[str, float] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)  # sidecar → what went wrong

    @property
    def arm_skew_ms(self) -> float | None:
        return _spread_ms(self.activated)

    @property
    def disarm_skew_ms(self) -> float | None:
        return _spread_ms(self.ended)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "targets": self.targets, "sidecars": list(self.sidecars),
            "start_at": iso(self.start_at), "end_at": iso(self.end_at), "lead_ms": round(self.lead_s * 1000, 3),
            "activated": {k: iso(v) for k, v in self.activated.items()},
            "ended": {k: iso(v) for k, v in self.ended.items()},
            "arm_skew_ms": self.arm_skew_ms, "disarm_skew_ms": self.disarm_skew_ms, "failed": dict(self.failed),
        }
