"""default_features: silent defaulting — feature values replaced, statuses still PRESENT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faults.base import require
from faults.exchange import Exchange
from faults.jsonpath import compile_path
from faults.ml.feast import PRESENT, FeastTable
from faults.ml.jsonbody import JsonResponseFault, edit_at, pick
from faults.ml.protocols import Protocol, check_paths


@dataclass(frozen=True)
class DefaultFeaturesFault(JsonResponseFault):
    """Silently default features: values become ``default_value`` while Feast still says ``PRESENT``.

    Why realistic: the usual imputation bug — a lookup miss filled with 0 or the training
    mean and reported as present; TFDV calls out "features with empty values"; scores shift
    only slightly, so nothing but distribution checks notice (the nastiest Feast case: the
    status still says the value is real).
    ``default_value``: the value written (default 0; any JSON value, e.g. a training mean).
    ``features``: names to hit (``view:name`` or ``name``); default every feature except
    join keys. ``fraction``: share of the selected values replaced, chosen with the seeded
    rng, at least one. ``paths``: JSON paths for other shapes; the values there are set to
    ``default_value``. Unchanged bodies pass byte for byte.
    """

    kind = "default_features"

    default_value: Any = 0
    features: tuple[str, ...] = ()
    fraction: float = 1.0
    paths: tuple[str, ...] = ()

    def validate(self) -> None:
        require(0.0 < self.fraction <= 1.0, "fraction", f"must be in (0, 1], got {self.fraction}")
        require(not isinstance(self.default_value, (dict, list)), "default_value", "must be a scalar JSON value")
        check_paths(self.paths, "paths")

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        if self.paths:
            paths = tuple(compile_path(p) for p in self.paths)
            return edit_at(paths, doc, lambda _old: self.default_value, ex.rng, self.fraction)
        table = FeastTable.of(doc)
        if table is None:
            return 0
        changed = 0
        for cell in pick(ex.rng, table.cells(self.features), self.fraction):
            changed += table.set(cell, "values", self.default_value) | table.set(cell, "statuses", PRESENT)
        return changed
