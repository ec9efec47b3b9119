"""latency: add delay to matching requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faults.base import PROCEED, Fault, Hook, Outcome, Phase
from faults.distributions import DistributionName, check_shape
from faults.distributions import draw_ms as draw
from faults.exchange import Exchange


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
    distribution: DistributionName = "fixed"
    sigma: float = 0.5
    alpha: float = 2.0
    max_ms: float = 60_000.0
    phase: Literal["request", "response"] = "request"

    def validate(self) -> None:
        check_shape(("delay_ms", self.delay_ms), ("jitter_ms", self.jitter_ms), ("sigma", self.sigma),
                    ("alpha", self.alpha), ("max_ms", self.max_ms))

    def draw_ms(self, ex: Exchange) -> float:
        return draw(ex.rng, self.distribution, self.delay_ms, self.jitter_ms, sigma=self.sigma, alpha=self.alpha,
                    max_ms=self.max_ms)

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
