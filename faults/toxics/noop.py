"""noop: pass everything through (useful in tests)."""

from __future__ import annotations

from dataclasses import dataclass

from faults.toxics.base import Toxic


@dataclass(frozen=True)
class NoopToxic(Toxic):
    """Pass-through; has no attributes."""

    type = "noop"
