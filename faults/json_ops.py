"""JSON-aware edits at JSON paths: the operations of ``corrupt`` (reusable by ML kinds)."""

from __future__ import annotations

import copy
import json
import math
import random
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic import ConfigDict

from faults.jsonpath import JsonPath, compile_path

OpName = Literal["set", "remove", "null", "nan", "infinity", "scale", "shuffle", "change_type"]

_INT = re.compile(r"^\s*-?\d+\s*$")
_FLOAT = re.compile(r"^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class JsonOp:
    """One edit: ``op`` applied to every value ``path`` selects.

    ``set`` (to ``value``), ``remove`` (the key or list item), ``null``, ``nan`` and
    ``infinity`` (written as the bare tokens ``NaN``/``Infinity``, as Python servers emit
    them), ``scale`` (numbers, also inside nested lists, times ``factor``), ``shuffle`` (a
    list, reordered), ``change_type`` (number → string, numeric string → number, other
    string → null, bool → string, null → "null", list/object → its JSON text).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    op: OpName
    path: str
    value: Any = None
    factor: float | None = None

    def __post_init__(self) -> None:
        try:
            compiled = compile_path(self.path)
        except ValueError as exc:
            raise ValueError(f"path: {exc}") from None
        if not compiled.steps:
            raise ValueError("path: must select something below '$'")
        if self.op == "scale" and self.factor is None:
            raise ValueError("factor: required by op 'scale'")
        if self.op != "scale" and self.factor is not None:
            raise ValueError("factor: only applies to op 'scale'")
        if self.op != "set" and self.value is not None:
            raise ValueError("value: only applies to op 'set'")

    @cached_property
    def compiled(self) -> JsonPath:
        return compile_path(self.path)

    def apply(self, doc: Any, rng: random.Random) -> int:
        """Edit ``doc`` in place; return how many values really changed."""
        if self.op == "remove":
            return self.compiled.remove(doc)
        changed = 0

        def compute(old: Any) -> Any:
            nonlocal changed
            new = self._transform(old, rng)
            if not _same(old, new):
                changed += 1
            return new

        self.compiled.set(doc, compute)
        return changed

    def _transform(self, old: Any, rng: random.Random) -> Any:
        match self.op:
            case "set":
                return copy.deepcopy(self.value)
            case "null":
                return None
            case "nan":
                return math.nan
            case "infinity":
                return math.inf
            case "scale":
                return scale(old, self.factor if self.factor is not None else 1.0)
            case "shuffle":
                return shuffle(old, rng)
            case _:
                return change_type(old)


def _same(old: Any, new: Any) -> bool:
    return old is new or (type(old) is type(new) and old == new)


def scale(value: Any, factor: float) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        result = value * factor
        # Keep integers integral when the factor allows it (2 * 3 stays 6, not 6.0).
        return int(result) if math.isfinite(result) and float(result).is_integer() else result
    if isinstance(value, float):
        return value * factor
    if isinstance(value, list):
        return [scale(v, factor) for v in value]
    return value


def shuffle(value: Any, rng: random.Random) -> Any:
    if not isinstance(value, list) or len(value) < 2:
        return value
    out = list(value)
    rng.shuffle(out)
    if out == value:
        out = value[1:] + value[:1]  # a shuffle that changed nothing is no fault: rotate
    return out


def change_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        if _INT.match(value):
            return int(value)
        if _FLOAT.match(value):
            return float(value)
        return None
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False)


def apply_all(ops: tuple[JsonOp, ...], doc: Any, rng: random.Random) -> int:
    return sum(op.apply(doc, rng) for op in ops)


def dumps(doc: Any) -> bytes:
    """Serialise compactly; NaN and infinities become the bare tokens Python servers emit."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode()
