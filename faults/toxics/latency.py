"""latency: delay every chunk, pipelined against the time it was received."""

from __future__ import annotations

from dataclasses import dataclass

from faults.toxics.base import Chunk, Emit, Stage, StageContext, Toxic


@dataclass(frozen=True)
class LatencyToxic(Toxic):
    """Delay each chunk by ``latency`` ms ± ``jitter`` ms (a uniform draw per chunk).

    A chunk is due at its receive time plus the delay; the stage waits only for the part
    not already spent queued, so latency adds up per chunk without cutting throughput.
    Order is kept (a chunk never overtakes an earlier one). Negative totals mean no delay.
    """

    type = "latency"

    latency: int = 0
    jitter: int = 0

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return _LatencyStage(self)


class _LatencyStage(Stage):
    __slots__ = ("toxic",)

    def __init__(self, toxic: LatencyToxic) -> None:
        self.toxic = toxic

    async def push(self, chunk: Chunk, ctx: StageContext, emit: Emit) -> None:
        delay_ms = self.toxic.latency
        if self.toxic.jitter > 0:
            delay_ms += ctx.rng.randrange(-self.toxic.jitter, self.toxic.jitter)
        due = chunk.ts + max(delay_ms, 0) / 1000.0
        wait = due - ctx.now()
        if wait > 0 and not await ctx.sleep(wait):
            await emit(chunk)  # interrupted: release the chunk now, never drop it
            return
        # Restamp, so a second latency toxic adds its delay on top of this one.
        await emit(Chunk(chunk.data, due))
