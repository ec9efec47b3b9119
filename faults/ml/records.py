"""Named feature values in model *requests*: where a feature lives in each request shape.

Shapes (TF Serving, MLflow ``/invocations``, Open Inference Protocol v2): ``instances`` / ``dataframe_records`` (a list of
objects, one per row), ``dataframe_split`` (``columns`` + ``data`` rows), ``inputs`` as an
object of columns (TF Serving column form), and OIP ``inputs[]`` tensors by ``name``.
Positional rows (lists without names) carry no feature names and are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Slot:
    """One feature value in one row: ``parent[key]``; ``column`` set for dataframe_split."""

    parent: Any
    key: Any
    name: str
    column: int = -1


def _wanted(name: str, wanted: tuple[str, ...]) -> bool:
    return not wanted or name in wanted or name.split(":")[-1] in {w.split(":")[-1] for w in wanted}


def slots(doc: Any, wanted: tuple[str, ...]) -> list[Slot]:
    """Every named feature value of a request body (restricted to ``wanted`` when given)."""
    if not isinstance(doc, dict):
        return []
    found: list[Slot] = []
    for key in ("instances", "dataframe_records"):
        rows = doc.get(key)
        if isinstance(rows, list):
            for row in rows:
                if isinstance(row, dict):
                    found += [Slot(row, k, k) for k in row if _wanted(k, wanted)]
    split = doc.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list):
        for i, name in enumerate(split["columns"]):
            if _wanted(str(name), wanted):
                found += [Slot(row, i, str(name), i) for row in split["data"] if isinstance(row, list) and i < len(row)]
    inputs = doc.get("inputs")
    if isinstance(inputs, dict):
        found += [Slot(inputs, k, k) for k in inputs if _wanted(k, wanted)]
    elif isinstance(inputs, list):
        found += [Slot(t, "data", str(t["name"])) for t in inputs
                  if isinstance(t, dict) and "name" in t and "data" in t and _wanted(str(t["name"]), wanted)]
    return found


def null_out(slot: Slot) -> bool:
    """Null one value (a whole column/tensor becomes nulls of the same length)."""
    old = slot.parent[slot.key]
    new: Any = [None] * len(old) if isinstance(old, list) and not isinstance(slot.parent, list) else None
    slot.parent[slot.key] = new
    return old != new


def drop_features(doc: dict[str, Any], names: set[str]) -> int:
    """Remove the named features from every row; return how many values were removed."""
    if not names:
        return 0
    removed = 0
    for slot in slots(doc, tuple(names)):
        if slot.column >= 0:
            continue  # dataframe_split: columns go below, all at once
        if isinstance(slot.parent, dict) and slot.key in slot.parent:
            tensors = doc.get("inputs")
            if isinstance(tensors, list) and any(slot.parent is t for t in tensors):
                tensors[:] = [t for t in tensors if t is not slot.parent]  # an OIP tensor: the whole input
            else:
                del slot.parent[slot.key]
            removed += 1
    split = doc.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list):
        for i in reversed(range(len(split["columns"]))):
            if _wanted(str(split["columns"][i]), tuple(names)):
                del split["columns"][i]
                for row in split.get("data") or []:
                    if isinstance(row, list) and i < len(row):
                        del row[i]
                        removed += 1
    return removed
