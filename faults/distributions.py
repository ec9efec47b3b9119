"""Drawing a pause in milliseconds: the one draw ``latency`` delays and ``stream`` stalls share.

``fixed`` (base ± uniform jitter), ``uniform`` (between base - jitter and base + jitter),
``normal`` (mean base, sd jitter), ``lognormal`` (median base, shape sigma), ``pareto`` (scale
base, shape alpha: a heavy tail). Every draw is clipped to [0, max_ms]. A fixed draw without
jitter takes nothing from the rng, so adding a distribution to a kind keeps its other draws.
"""

from __future__ import annotations

import random
from typing import Literal

from faults.base import require

DistributionName = Literal["fixed", "uniform", "normal", "lognormal", "pareto"]


def draw_ms(rng: random.Random, distribution: DistributionName, base_ms: float, jitter_ms: float, *,
            sigma: float, alpha: float, max_ms: float) -> float:
    """One pause in milliseconds, drawn from ``rng``."""
    match distribution:
        case "fixed" | "uniform":
            value = base_ms + (rng.uniform(-jitter_ms, jitter_ms) if jitter_ms else 0.0)
        case "normal":
            value = rng.gauss(base_ms, jitter_ms)
        case "lognormal":
            value = base_ms * rng.lognormvariate(0.0, sigma)
        case "pareto":
            value = base_ms * rng.paretovariate(alpha)
    return min(max(value, 0.0), max_ms)


def check_shape(base: tuple[str, float], jitter: tuple[str, float], sigma: tuple[str, float],
                alpha: tuple[str, float], max_ms: tuple[str, float]) -> None:
    """Validate a distribution's parameters, each given as (the kind's parameter name, value)."""
    for name, value in (base, jitter, max_ms):
        require(value >= 0, name, "must be >= 0")
    for name, value in (sigma, alpha):
        require(value > 0, name, "must be > 0")
