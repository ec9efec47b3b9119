"""The target-adapter contract: ``perform()`` the action, ``undo()`` it (restart, unpause).

``undo`` is what cleanup calls, always; it is idempotent and safe to call when nothing was
done. With ``restart_after`` the adapter also undoes by itself that long after
``perform``; cleanup then only waits for (or hurries) that. A failed timed undo is kept in
``undo_error`` and tried again by ``undo``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from contextlib import suppress


class Target(ABC):
    def __init__(self, restart_after: float | None) -> None:
        self.restart_after = restart_after
        self.performed = False
        self.undone = False
        self.undo_error: BaseException | None = None
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._waiting = False  # the timer is still sleeping (safe to cancel)

    @abstractmethod
    def describe(self) -> str:
        """``kill docker:gpu-worker`` — for timelines and logs."""

    @property
    def can_undo(self) -> bool:
        return True

    @abstractmethod
    async def _act(self) -> None: ...

    @abstractmethod
    async def _undo(self) -> None: ...

    async def perform(self) -> None:
        await self._act()
        self.performed = True
        if self.restart_after is not None and self.can_undo:
            self._waiting = True
            self._timer = asyncio.create_task(self._timed_undo(self.restart_after))

    async def _timed_undo(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._waiting = False
        try:
            await self._undo_once()
        except Exception as exc:  # kept for the report; cleanup's undo() tries again
            self.undo_error = exc

    async def undo(self) -> None:
        """Undo now (or wait for the timed undo already running); raise if it fails."""
        if self._timer is not None and not self._timer.done():
            if self._waiting:
                self._timer.cancel()
            with suppress(asyncio.CancelledError):
                await self._timer
        await self._undo_once()

    async def wait_undone(self) -> None:
        """Wait for the timed undo (tests, and runners that want the backend back)."""
        if self._timer is not None:
            with suppress(asyncio.CancelledError):
                await self._timer

    async def _undo_once(self) -> None:
        async with self._lock:
            if not self.performed or self.undone or not self.can_undo:
                return
            await self._undo()
            self.undone = True
            self.undo_error = None
