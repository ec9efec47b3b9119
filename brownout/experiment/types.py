"""Field types of experiment files: durations, files, fractions, JSON paths, signals.

Durations and paths read two settings from the pydantic validation context, so the one
place that knows about them is the validator: ``time_scale`` multiplies every duration
and offset (``--time-scale``), ``base_dir`` is the experiment file's folder (relative
paths resolve against it).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema

from faults.jsonpath import compile_path
from faults.units import parse_duration

_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(us|µs|ms|s|m|h)?\s*$"},
    ],
    "description": "a duration: 250ms, 30s, 5m, 1h, or seconds",
}


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


def _duration(value: Any, info: ValidationInfo) -> float:
    return parse_duration(value) * float(_context(info).get("time_scale", 1.0))


def _resolve(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, (str, Path)) or value == "":
        return value
    path = Path(value).expanduser()
    base = _context(info).get("base_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


def _json_path(value: str) -> str:
    compile_path(value)  # raises ValueError naming the bad character
    return value


def _signal(value: Any) -> str:
    """Accept KILL, SIGKILL, kill or 9; keep the canonical name (SIGKILL)."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return signal.Signals(value).name
        if isinstance(value, str):
            name = value.strip().upper()
            if name.isdigit():
                return signal.Signals(int(name)).name
            return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"].name
    except (KeyError, ValueError):
        pass
    raise ValueError(f"unknown signal {value!r} (write KILL, TERM, STOP, INT, HUP or a number)")


Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]
"""Seconds, from ``250ms``/``30s``/``5m``/``1h``/a number; scaled by ``time_scale``."""

PositiveDuration = Annotated[Duration, Field(gt=0)]

InputFile = Annotated[
    Path, BeforeValidator(_resolve), AfterValidator(_existing_file),
    WithJsonSchema({"type": "string", "description": "a file, relative to the experiment file"}),
]
"""A data file that must exist; relative to the experiment file."""

RelPath = Annotated[
    Path, BeforeValidator(_resolve),
    WithJsonSchema({"type": "string", "description": "a path, relative to the experiment file"}),
]

Fraction = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
JsonPathText = Annotated[
    str, AfterValidator(_json_path),
    WithJsonSchema({"type": "string", "pattern": r"^\$", "description": "a JSON path: $.a.b[0].c"}),
]
SignalName = Annotated[
    str, BeforeValidator(_signal),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "KILL, TERM, STOP, … or a number"}),
]
