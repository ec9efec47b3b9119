"""limit_data: close the connection after a number of bytes."""

from __future__ import annotations

from dataclasses import dataclass

from faults.toxics.base import Chunk, CloseLink, Emit, Stage, StageContext, Toxic


@dataclass(frozen=True)
class LimitDataToxic(Toxic):
    """Forward at most ``bytes`` bytes in its direction over the connection's life, then
    close it (FIN). The count survives updates of the toxic; 0 closes on the first chunk."""

    type = "limit_data"

    bytes: int = 0

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        stage = _LimitStage(self.bytes)
        if isinstance(previous, _LimitStage):
            stage.sent = previous.sent
        return stage


class _LimitStage(Stage):
    __slots__ = ("limit", "sent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0

    async def push(self, chunk: Chunk, ctx: StageContext, emit: Emit) -> None:
        room = self.limit - self.sent
        if room > 0:
            data = chunk.data[:room]
            self.sent += len(data)
            await emit(Chunk(data, chunk.ts) if len(data) < len(chunk.data) else chunk)
        if self.sent >= self.limit:
            raise CloseLink()
