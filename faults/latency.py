"""latency: add delay to matching requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faults.base import PROCEED, Exchange, Fault, Hook, Outcome, Phase, require


@dataclass(frozen=True)
class LatencyFault(Fault):
    """Add delay: fixed ``delay_ms`` ± uniform ``jitter_ms``, or drawn from a distribution.

    ``distribution``: ``fixed`` (delay ± jitter), ``uniform`` (between delay_ms - jitter_ms
    and delay_ms + jitter_ms), ``normal`` (mean delay_ms, sd jitter_ms), ``lognormal``
    (median delay_ms, shape sigma), ``pareto`` (scale delay_ms, shape alpha: a heavy tail).
    Every draw is clipped to [0, ``max_ms``]. ``phase``: ``request`` delays before the
    request goes upstream, ``response`` after upstream answered, before the client sees it.
    """

    kind = "latency"

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    distribution: Literal["fixed", "uniform", "normal", "lognormal", "pareto"] = "fixed"
    sigma: float = 0.5
    alpha: float = 2.0
    max_ms: float = 60_000.0
    phase: Literal["request", "response"] = "request"

    def validate(self) -> None:
        require(self.delay_ms >= 0, "delay_ms", "must be >= 0")
        require(self.jitter_ms >= 0, "jitter_ms", "must be >= 0")
        require(self.max_ms >= 0, "max_ms", "must be >= 0")
        require(self.sigma > 0, "sigma", "must be > 0")
        require(self.alpha > 0, "alpha", "must be > 0")

    def draw_ms(self, ex: Exchange) -> float:
        rng = ex.rng
        match self.distribution:
            case "fixed" | "uniform":
                value = self.delay_ms + (rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0)
            case "normal":
                value = rng.gauss(self.delay_ms, self.jitter_ms)
            case "lognormal":
                value = self.delay_ms * rng.lognormvariate(0.0, self.sigma)
            case "pareto":
                value = self.delay_ms * rng.paretovariate(self.alpha)
        return min(max(value, 0.0), self.max_ms)

    def hooks(self) -> frozenset[Hook]:
        return frozenset({Hook.ON_REQUEST if self.phase == Phase.REQUEST else Hook.ON_RESPONSE})

    async def delay(self, ex: Exchange) -> Outcome:
        delay_ms = self.draw_ms(ex)
        ex.report(delay_ms=round(delay_ms, 3))
        await ex.sleep(delay_ms / 1000.0)
        return PROCEED

    async def on_request(self, ex: Exchange) -> Outcome:
        return await self.delay(ex) if self.phase == Phase.REQUEST else PROCEED

    async def on_response(self, ex: Exchange) -> Outcome:
        return await self.delay(ex) if self.phase == Phase.RESPONSE else PROCEED
