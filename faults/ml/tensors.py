"""Finding values inside tensors and predictions: slots selected by a path, numeric leaves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from faults.jsonpath import WILDCARD, JsonPath

Slot = tuple[Any, Any]  # (parent, key): the value is parent[key]


def slots(path: JsonPath, doc: Any) -> list[Slot]:
    """The (parent, key) of every value ``path`` selects, so callers can replace or rename it."""
    return list(_walk(doc, path.steps)) if path.steps else []


def _walk(node: Any, steps: tuple[Any, ...]) -> Iterator[Slot]:
    step, rest = steps[0], steps[1:]
    if step == WILDCARD:
        keys: list[Any] = list(range(len(node))) if isinstance(node, list) else list(node) if isinstance(node, dict) else []
    elif isinstance(step, int) and isinstance(node, list) and -len(node) <= step < len(node) or isinstance(step, str) and isinstance(node, dict) and step in node:
        keys = [step]
    else:
        return
    for key in keys:
        if rest:
            yield from _walk(node[key], rest)
        else:
            yield node, key


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numeric_leaves(parent: Any, key: Any) -> list[Slot]:
    """Every number at or below ``parent[key]`` (lists and objects are searched)."""
    value = parent[key]
    if is_number(value):
        return [(parent, key)]
    if isinstance(value, list):
        return [leaf for i in range(len(value)) for leaf in numeric_leaves(value, i)]
    if isinstance(value, dict):
        return [leaf for k in list(value) for leaf in numeric_leaves(value, k)]
    return []


def leaves_at(paths: tuple[JsonPath, ...], doc: Any) -> list[Slot]:
    return [leaf for path in paths for parent, key in slots(path, doc) for leaf in numeric_leaves(parent, key)]


def oip_outputs(doc: Any, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The OIP output tensors (objects with ``data``), restricted to ``names`` when given."""
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    if not isinstance(outputs, list):
        return []
    return [o for o in outputs if isinstance(o, dict) and "data" in o and (not names or o.get("name") in names)]


def targets(doc: Any, paths: tuple[JsonPath, ...], oip: bool, names: tuple[str, ...]) -> list[Slot]:
    """Where the scores are: OIP output ``data`` (by name), else the given paths."""
    if oip:
        return [(o, "data") for o in oip_outputs(doc, names)]
    return [slot for path in paths for slot in slots(path, doc)]
