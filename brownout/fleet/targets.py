"""Blast radius: which members of a group a step's fault goes to, and the limits it must keep.

The choice is seeded by the experiment's seed and the step's index, so the same experiment
picks the same sidecars every run (members are sorted by address, see ``discovery``).
"""

from __future__ import annotations

import math
import random

from brownout.experiment.proxies import Safety, Targets
from faults.errors import InvalidInput


def target_count(size: int, targets: Targets, where: str) -> int:
    """How many of ``size`` members ``targets`` picks; InvalidInput when it cannot."""
    if targets.mode == "all":
        return size
    if targets.mode == "one":
        return 1
    assert targets.value is not None  # the model requires it for fixed and percent
    if targets.mode == "fixed":
        count = int(targets.value)
        if count > size:
            raise InvalidInput(f"fixed {count} sidecars, but the group has {size}", f"{where}.targets.value")
        return count
    return max(1, math.floor(size * targets.value / 100 + 1e-9))


def check_step(size: int, targets: Targets, safety: Safety, where: str) -> int:
    """The number of members the step hits, checked against ``min_armed`` and ``safety``."""
    count = target_count(size, targets, where)
    if targets.min_armed is not None and targets.min_armed > count:
        raise InvalidInput(f"min_armed {targets.min_armed} is more than the {count} sidecar(s) chosen",
                           f"{where}.targets.min_armed")
    if count * 100 > safety.max_targets_percent * size:
        raise InvalidInput(f"hits {count} of {size} sidecars ({count * 100 / size:.4g}%), over "
                           f"safety.max_targets_percent {safety.max_targets_percent:g}", f"{where}.targets")
    return count


def choose(size: int, targets: Targets, *, seed: int, step: int, where: str = "") -> tuple[int, ...]:
    """Indexes (sorted) of the members the step hits: all of them, or a seeded sample."""
    count = target_count(size, targets, where)
    if count >= size:
        return tuple(range(size))
    rng = random.Random(f"brownout-targets:{seed}:{step}")  # a str seed hashes the same in every process
    return tuple(sorted(rng.sample(range(size), count)))
