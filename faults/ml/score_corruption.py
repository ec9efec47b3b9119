"""score_corruption: scores changed but still well-formed — p^k, affine, constant, 1-p, label swap."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from faults.base import require
from faults.exchange import Exchange
from faults.ml.jsonbody import JsonResponseFault, same
from faults.ml.protocols import Protocol, Role, check_paths, resolve
from faults.ml.tensors import is_number, numeric_leaves, targets


@dataclass(frozen=True)
class ScoreCorruptionFault(JsonResponseFault):
    """Corrupt scores while the format stays valid: monotone transform, constant, inversion, label swap.

    Why realistic: infrastructure bugs that change the numbers but not the format — OpenAI's
    20 Feb 2024 kernel bug, Anthropic's Aug–Sep 2025 miscompile — all returned 200.
    ``power`` (p → p^k) keeps AUC yet breaks calibration, so only Brier/ECE catch it.
    ``mode``: ``power`` (p^``exponent``, sign kept), ``affine`` (``scale``·p + ``offset``),
    ``constant`` (every score becomes ``value``, a prior-only model), ``invert`` (1 − p),
    ``label_swap`` (labels exchanged by ``labels``, e.g. ``{"fraud": "legit"}``, applied
    both ways; without ``labels``: integer class ids 0 ↔ 1 and each row of class
    probabilities reversed). ``clip``: clamp results into [0, 1]. ``outputs``: OIP output
    tensor names to hit (default all). ``paths``: JSON paths of the scores for other shapes
    (defaults: OIP ``outputs[*].data``, TF Serving / MLflow ``predictions``).
    Unchanged bodies pass byte for byte.
    """

    kind = "score_corruption"

    mode: Literal["power", "affine", "constant", "invert", "label_swap"] = "power"
    exponent: float = 2.0
    scale: float = 1.0
    offset: float = 0.0
    value: float = 0.5
    labels: dict[str, str] = field(default_factory=dict)
    clip: bool = False
    outputs: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def validate(self) -> None:
        require(self.exponent > 0, "exponent", f"must be > 0, got {self.exponent}")
        require(math.isfinite(self.scale) and math.isfinite(self.offset), "scale", "scale and offset must be finite")
        require(not self.labels or self.mode == "label_swap", "labels", "only applies to mode 'label_swap'")
        check_paths(self.paths, "paths")

    def __hash__(self) -> int:  # ``labels`` is a dict; hash the rest
        return hash((self.mode, self.exponent, self.scale, self.offset, self.value, self.clip, self.outputs, self.paths))

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        oip = protocol == Protocol.OIP and not self.paths
        places = targets(doc, resolve(self.paths, protocol, Role.SCORES), oip, self.outputs)
        if self.mode == "label_swap":
            return sum(self._swap(parent, key, oip) for parent, key in places)
        changed = 0
        for parent, key in [leaf for place in places for leaf in numeric_leaves(*place)]:
            old = parent[key]
            new = self.score(old)
            parent[key] = new
            changed += not same(old, new)
        return changed

    def score(self, p: float) -> float:
        match self.mode:
            case "power":
                new = math.copysign(abs(p) ** self.exponent, p)
            case "affine":
                new = self.scale * p + self.offset
            case "constant":
                new = self.value
            case _:
                new = 1.0 - p
        return min(1.0, max(0.0, new)) if self.clip else new

    def _swap(self, parent: Any, key: Any, oip: bool) -> int:
        value = parent[key]
        width = _row_width(parent) if oip else 0
        if width > 1 and isinstance(value, list) and all(is_number(v) for v in value):
            # An OIP tensor written flat: its rows are groups of ``shape[-1]`` class probabilities.
            rows = [value[i:i + width][::-1] for i in range(0, len(value), width)]
            parent[key] = [v for row in rows for v in row]
            return int(parent[key] != value)
        return self._swap_value(parent, key)

    def _swap_value(self, parent: Any, key: Any) -> int:
        value = parent[key]
        pairs = {**self.labels, **{v: k for k, v in self.labels.items()}}
        if isinstance(value, list):
            if len(value) > 1 and all(isinstance(v, float) for v in value):
                parent[key] = value[::-1]  # one row of class probabilities
                return int(value != parent[key])
            return sum(self._swap_value(value, i) for i in range(len(value)))
        if isinstance(value, dict):
            return sum(self._swap_value(value, k) for k in list(value))
        if isinstance(value, str) and value in pairs:
            parent[key] = pairs[value]
        elif not pairs and isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            parent[key] = 1 - value
        return int(not same(value, parent[key]))


def _row_width(tensor: Any) -> int:
    shape = tensor.get("shape") if isinstance(tensor, dict) else None
    if isinstance(shape, list) and len(shape) >= 2 and isinstance(shape[-1], int):
        return shape[-1]
    return 0
