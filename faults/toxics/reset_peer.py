"""reset_peer: reset the connection (TCP RST) when data arrives."""

from __future__ import annotations

from dataclasses import dataclass

from faults.toxics.base import Chunk, CloseLink, Emit, Stage, StageContext, Toxic


@dataclass(frozen=True)
class ResetPeerToxic(Toxic):
    """On the first chunk (or close) in its direction, drop it, wait ``timeout`` ms, then
    reset both sides of the connection with a real RST (ECONNRESET at the peers).

    An idle connection is not reset. The RST is armed only when the toxic fires, so
    connections it spares close normally.
    """

    type = "reset_peer"

    timeout: int = 0

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return _ResetPeerStage(self.timeout)


class _ResetPeerStage(Stage):
    __slots__ = ("timeout",)

    def __init__(self, timeout: int) -> None:
        self.timeout = timeout

    async def _fire(self, ctx: StageContext) -> None:
        if self.timeout > 0:
            await ctx.hold(self.timeout / 1000.0)
        raise CloseLink(reset=True)

    async def push(self, chunk: Chunk, ctx: StageContext, emit: Emit) -> None:
        await self._fire(ctx)

    async def eof(self, ctx: StageContext) -> None:
        await self._fire(ctx)
