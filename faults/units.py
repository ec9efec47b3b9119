"""Durations as users write them (``250ms``, ``30s``, ``5m``, ``1h`` or plain seconds), and the
bounds every number from outside must keep.

Python's ``json`` reads ``NaN``, ``Infinity``, ``1e400`` (→ inf) and integers of thousands of
digits, and YAML has ``.nan`` and ``.inf``. None of them is a sensible delay, lease or count:
``NaN`` compares false with everything, so a NaN lease passes every range check and never
expires, and a huge integer overflows when it meets a float. They are refused at the edge,
with the field named, before anything is stored.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from faults.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$", re.ASCII)
_SCALE = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

MAX_SECONDS = 366 * 86400.0
"""The longest duration accepted anywhere: a year (longer is a typo, and stays far from the
limits of event-loop timers)."""
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # integers from outside fit in 64 bits
MAX_DEPTH = 32  # nesting of objects and arrays from outside


def parse_duration(value: object) -> float:
    """Return seconds, finite, in ``[0, MAX_SECONDS]``; raise ValueError (never OverflowError)
    with the accepted forms for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("duration must be >= 0")
        if value > MAX_SECONDS:  # compared as int: float() of a 400-digit int overflows
            raise ValueError(_TOO_LONG)
        return float(value)
    if isinstance(value, float):
        return _bounded(value)
    if isinstance(value, str) and len(value) <= 64:
        match = _DURATION.match(value)
        if match:
            return _bounded(float(match.group(1)) * _SCALE[match.group(2)])
    raise ValueError(f"not a duration: {_short(value)} (write 250ms, 30s, 5m, 1h or seconds)")


_TOO_LONG = f"duration must be at most {MAX_SECONDS:.0f}s (366 days)"


def _bounded(seconds: float) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be a finite number, got {seconds}")
    if seconds < 0:
        raise ValueError("duration must be >= 0")
    if seconds > MAX_SECONDS:
        raise ValueError(_TOO_LONG)
    return seconds


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) else "an integer"
    return text if len(text) <= 40 else text[:37] + "..."


def check_numbers(value: Any, field: str | None = None) -> None:
    """Refuse non-finite floats, integers outside 64 bits and nesting deeper than ``MAX_DEPTH``
    anywhere in ``value`` (JSON-like data, or a validated dataclass), naming the dotted field."""
    stack: list[tuple[Any, str | None, int]] = [(value, field, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(f"must be a finite number, got {item}", where)
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise InvalidInput("number out of range (integers must fit in 64 bits)", where)
        else:
            children = _children(item)
            if children is None:
                continue
            if depth >= MAX_DEPTH:
                raise InvalidInput(f"nested deeper than {MAX_DEPTH} levels", where)
            stack.extend((child, _join(where, key), depth + 1) for key, child in children)


def _children(item: Any) -> list[tuple[str, Any]] | None:
    if isinstance(item, Mapping):
        return [(str(k), v) for k, v in item.items()]
    if isinstance(item, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(item)]
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return [(f.name, getattr(item, f.name)) for f in dataclasses.fields(item) if f.init]
    return None


def _join(where: str | None, key: str) -> str:
    if key.startswith("["):
        return f"{where or ''}{key}"
    return f"{where}.{key}" if where else key


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    if seconds < 7200:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
