"""slicer: cut chunks into small pieces, optionally with a delay between them."""

from __future__ import annotations

from dataclasses import dataclass

from faults.toxics.base import Chunk, Emit, Stage, StageContext, Toxic, require


@dataclass(frozen=True)
class SlicerToxic(Toxic):
    """Slice each chunk into pieces of about ``average_size`` bytes (± ``size_variation``),
    sleeping ``delay`` µs after each piece.

    A segment longer than average + variation is cut at its midpoint shifted by a uniform
    draw in [-variation, variation) and both halves are cut again, so pieces end up between
    about half and all of average + variation. ``average_size + size_variation`` must be
    at least 1 (0 makes Toxiproxy recurse until it crashes).
    """

    type = "slicer"

    average_size: int = 0
    size_variation: int = 0
    delay: int = 0

    def validate(self) -> None:
        require(self.average_size + self.size_variation >= 1, "average_size",
                "average_size + size_variation must be >= 1 (0 crashes Toxiproxy)")

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return _SlicerStage(self)

    def cuts(self, size: int, ctx: StageContext) -> list[int]:
        """Piece lengths for a chunk of ``size`` bytes, in order."""
        limit = self.average_size + self.size_variation
        out: list[int] = []
        pending = [size]  # a stack of segment lengths, leftmost on top
        while pending:
            length = pending.pop()
            if length <= limit:
                out.append(length)
                continue
            mid = length // 2
            if self.size_variation > 0:
                mid += ctx.rng.randrange(-self.size_variation, self.size_variation)
            mid = min(max(mid, 1), length - 1)
            pending.append(length - mid)
            pending.append(mid)
        return out


class _SlicerStage(Stage):
    __slots__ = ("toxic",)

    def __init__(self, toxic: SlicerToxic) -> None:
        self.toxic = toxic

    async def push(self, chunk: Chunk, ctx: StageContext, emit: Emit) -> None:
        data, start = chunk.data, 0
        delay_s = self.toxic.delay / 1_000_000
        for length in self.toxic.cuts(len(data), ctx):
            await emit(Chunk(data[start:start + length], chunk.ts))
            start += length
            if delay_s > 0 and not await ctx.sleep(delay_s):
                break  # interrupted: the rest goes out as one piece
        if start < len(data):
            await emit(Chunk(data[start:], chunk.ts))
