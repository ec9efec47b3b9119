"""bandwidth: limit the rate of one direction, in KB/s."""

from __future__ import annotations

import math
from dataclasses import dataclass

from faults.toxics.base import Chunk, Emit, Stage, StageContext, Toxic, require

_SLICE_S = 0.1  # large chunks go out in rate×100 ms pieces, one every 100 ms


@dataclass(frozen=True)
class BandwidthToxic(Toxic):
    """Limit throughput to ``rate`` KB/s (KB = 1000 bytes); ``rate`` 0 stalls everything.

    Pacing is debt-based: each chunk owes len/rate ms, the stage sleeps what it owes and
    subtracts the time that really passed, so timer error does not accumulate. Idle time
    earns no credit (no bursts). A negative rate is rejected (it crashes Toxiproxy).
    """

    type = "bandwidth"

    rate: int = 0

    def validate(self) -> None:
        require(self.rate >= 0, "rate", "must be >= 0 (a negative rate crashes Toxiproxy; 0 stalls)")

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return _BandwidthStage(self.rate)


class _BandwidthStage(Stage):
    __slots__ = ("debt", "rate")

    def __init__(self, rate: int) -> None:
        self.rate = rate  # bytes per ms, numerically
        self.debt = 0.0  # seconds owed

    async def push(self, chunk: Chunk, ctx: StageContext, emit: Emit) -> None:
        if self.rate == 0:
            await ctx.sleep(math.inf)  # returns only when interrupted; then the data flows
            await emit(chunk)
            return
        data = chunk.data
        self.debt += len(data) / self.rate / 1000.0
        piece = self.rate * 100
        while len(data) > piece:
            if not await ctx.sleep(_SLICE_S):
                break
            await emit(Chunk(data[:piece], chunk.ts))
            data = data[piece:]
            self.debt -= _SLICE_S
        else:
            start = ctx.now()
            if self.debt > 0 and await ctx.sleep(self.debt):
                self.debt -= ctx.now() - start
            elif self.debt > 0:
                self.debt = 0.0
        await emit(Chunk(data, chunk.ts))
