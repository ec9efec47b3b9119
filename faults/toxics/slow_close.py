"""slow_close: delay the close of one direction."""

from __future__ import annotations

from dataclasses import dataclass

from faults.toxics.base import Stage, StageContext, Toxic


@dataclass(frozen=True)
class SlowCloseToxic(Toxic):
    """Pass data untouched; when the source closes, wait ``delay`` ms before closing."""

    type = "slow_close"

    delay: int = 0

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return _SlowCloseStage(self.delay)


class _SlowCloseStage(Stage):
    __slots__ = ("delay",)

    def __init__(self, delay: int) -> None:
        self.delay = delay

    async def eof(self, ctx: StageContext) -> None:
        if self.delay > 0:
            await ctx.sleep(self.delay / 1000.0)
