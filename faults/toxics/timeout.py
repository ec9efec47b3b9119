"""timeout: black-hole one direction, and close after an idle timeout."""

from __future__ import annotations

from dataclasses import dataclass

from faults.toxics.base import Chunk, CloseLink, Emit, Stage, StageContext, Toxic


@dataclass(frozen=True)
class TimeoutToxic(Toxic):
    """Discard all data; close the connection once no chunk has come for ``timeout`` ms.

    The timer restarts on every chunk and when the toxic is added or updated. ``timeout``
    0 never closes: data is black-holed until the toxic is removed. Removing it closes the
    connections it was black-holing (their stream has lost data).
    """

    type = "timeout"

    timeout: int = 0

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return _TimeoutStage(self.timeout, ctx.now())


class _TimeoutStage(Stage):
    __slots__ = ("deadline", "timeout")
    close_on_remove = True

    def __init__(self, timeout: int, now: float) -> None:
        self.timeout = timeout
        self.deadline = now + timeout / 1000.0 if timeout > 0 else None

    async def push(self, chunk: Chunk, ctx: StageContext, emit: Emit) -> None:
        if self.timeout > 0:
            self.deadline = ctx.now() + self.timeout / 1000.0

    async def eof(self, ctx: StageContext) -> None:
        raise CloseLink()

    async def on_deadline(self, ctx: StageContext) -> None:
        raise CloseLink()
