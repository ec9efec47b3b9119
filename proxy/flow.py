"""Flow control between a protocol's callbacks and the coroutine that forwards its bytes.

``BodyStream`` carries one message body from parser callbacks to a reader: pieces are kept as
they arrived (never joined unless asked), and the producing transport is paused while more than
``HIGH_WATER`` bytes wait. ``WriteFlow`` is the other direction: ``drain()`` waits while the
transport's write buffer is over its limit. Together a large body streams through in bounded
memory whichever side is slower.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


def wake(waiter: asyncio.Future[None] | None, error: BaseException | None = None) -> None:
    """Resolve a coroutine's waiter, if there is one still waiting."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None) if error is None else waiter.set_exception(error)


class BodyStream:
    __slots__ = ("_pieces", "_buffered", "_done", "_error", "_waiter", "_pause", "_resume", "_paused")

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pause, self._resume = pause, resume
        self._paused = False

    # -- the producer side (parser callbacks)

    def feed(self, data: bytes) -> None:
        self._pieces.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._done = True
            self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        wake(waiter)

    # -- the consumer side

    @property
    def complete(self) -> bool:
        """Every byte has arrived (and nothing went wrong): ``take_all`` gives the whole body."""
        return self._done and self._error is None

    @property
    def finished(self) -> bool:
        """Nothing more will come: the body is fully read, or it broke."""
        return self._done and not self._pieces

    def take_all(self) -> bytes:
        """What has arrived so far, as one piece (the whole body once ``complete``)."""
        pieces = self._pieces
        data = pieces.popleft() if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        self._consumed(len(data))
        return data

    async def read(self) -> bytes:
        """The next piece as it arrived; ``b""`` at the end. Raises what broke the body."""
        while not self._pieces:
            if self._done:
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        data = self._pieces.popleft()
        self._consumed(len(data))
        return data

    async def pieces(self) -> AsyncIterator[bytes]:
        while data := await self.read():
            yield data

    async def read_all(self, limit: int) -> bytes | None:
        """The whole body, or None when it is longer than ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        while data := await self.read():
            size += len(data)
            if size > limit:
                return None
            parts.append(data)
        return b"".join(parts)

    def _consumed(self, size: int) -> None:
        self._buffered -= size
        if self._paused and self._buffered <= LOW_WATER:
            self._paused = False
            self._resume()


class WriteFlow(asyncio.Protocol):
    """Base of both protocols: ``await drain()`` after a write holds the writer while the peer
    is slower than us; a lost connection wakes it with the error."""

    _write_paused = False
    _drain_waiter: asyncio.Future[None] | None = None
    _lost: BaseException | None = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer(None)

    def _wake_writer(self, error: BaseException | None) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        wake(waiter, error)

    async def drain(self) -> None:
        if self._lost is not None:
            raise self._lost
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter
