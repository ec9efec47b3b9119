"""stale_features: features served from the past — old event timestamps, OUTSIDE_MAX_AGE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from faults.base import require
from faults.exchange import Exchange
from faults.jsonpath import compile_path
from faults.ml.feast import FeastTable
from faults.ml.jsonbody import JsonResponseFault, edit_at, pick
from faults.ml.protocols import Protocol, check_paths


@dataclass(frozen=True)
class StaleFeaturesFault(JsonResponseFault):
    """Make features stale: event timestamps moved ``age_s`` into the past, optionally ``OUTSIDE_MAX_AGE``.

    Why realistic: Google Play served from a table that was stale for six months, and
    refreshing it alone gave +2% installs (Rules of ML #10); the ML Test Score asks that
    "models are not too stale".
    ``age_s``: how much older each hit timestamp becomes (default one day).
    ``status``: ``OUTSIDE_MAX_AGE`` (default: Feast admits the value is older than its TTL)
    or ``PRESENT`` (silent staleness: only the timestamps tell). ``features``: names to hit
    (``view:name`` or ``name``); default every feature except join keys. ``fraction``:
    share of the selected values hit, chosen with the seeded rng, at least one. ``paths``:
    JSON paths of timestamps in other shapes (ISO 8601 strings or epoch seconds), moved
    back by ``age_s``. Unchanged bodies pass byte for byte.
    """

    kind = "stale_features"

    age_s: float = 86_400.0
    status: Literal["OUTSIDE_MAX_AGE", "PRESENT"] = "OUTSIDE_MAX_AGE"
    features: tuple[str, ...] = ()
    fraction: float = 1.0
    paths: tuple[str, ...] = ()

    def validate(self) -> None:
        require(self.age_s > 0, "age_s", f"must be > 0, got {self.age_s}")
        require(0.0 < self.fraction <= 1.0, "fraction", f"must be in (0, 1], got {self.fraction}")
        check_paths(self.paths, "paths")

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        if self.paths:
            return edit_at(tuple(compile_path(p) for p in self.paths), doc, self.older, ex.rng, self.fraction)
        table = FeastTable.of(doc)
        if table is None:
            return 0
        changed = 0
        for cell in pick(ex.rng, table.cells(self.features), self.fraction):
            stamp = table.get(cell, "event_timestamps")
            changed += table.set(cell, "event_timestamps", self.older(stamp)) | table.set(cell, "statuses", self.status)
        return changed

    def older(self, stamp: Any) -> Any:
        """``stamp`` moved ``age_s`` back, in the same notation; unknown notations unchanged."""
        if isinstance(stamp, bool):
            return stamp
        if isinstance(stamp, (int, float)):
            moved = stamp - self.age_s
            return int(moved) if isinstance(stamp, int) and float(moved).is_integer() else moved
        if not isinstance(stamp, str):
            return stamp
        zulu = stamp.endswith("Z")
        try:
            when = datetime.fromisoformat(stamp[:-1] + "+00:00" if zulu else stamp)
        except ValueError:
            return stamp
        text = (when - timedelta(seconds=self.age_s)).isoformat()
        return text.removesuffix("+00:00") + "Z" if zulu else text
