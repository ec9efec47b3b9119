"""A link: one direction of a relayed connection (upstream = client→server,
downstream = server→client), and the toxics configured on a proxy.

With no toxic in its direction a link writes each read straight to the other socket from
``data_received`` (no task, no queue: the fast path). When its direction has active toxics
it switches to a pump: reads are stamped with their receive time and queued, and one task
per link runs each chunk through the toxic stages in order. When the last toxic goes the
pump drains its queue and the link returns to the fast path. Backpressure: a destination
that stops draining pauses reading at the source, and so does a full queue.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from faults.toxics import Chunk, CloseLink, Stage, Toxic, roll

if TYPE_CHECKING:
    from proxy.tcp.connection import Connection, Side

log = structlog.get_logger("brownout.tcp")

_QUEUE_LIMIT = 32 * 1024 * 1024  # bytes queued in a pumped link before reading pauses
UPSTREAM, DOWNSTREAM = "upstream", "downstream"


@dataclass(frozen=True, eq=False)
class ToxicEntry:
    """A toxic as configured on a proxy. Updates make a new entry (links compare by identity)."""

    name: str
    stream: str  # as sent (Toxiproxy echoes its case)
    direction: str  # "upstream" | "downstream"
    toxicity: float
    toxic: Toxic
    rng: random.Random
    uid: int = 0  # kept across updates: a toxic counts once per connection, however edited

    @property
    def type(self) -> str:
        return self.toxic.type

    def as_json(self) -> dict[str, Any]:
        """Toxiproxy's toxic object, keys in its order; toxicity an int when integral."""
        toxicity: float | int = int(self.toxicity) if self.toxicity.is_integer() else self.toxicity
        return {"attributes": self.toxic.attributes(), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": toxicity}


class _StageContext:
    """The ``StageContext`` of one stage on one link: interruptible sleeps on the loop clock."""

    __slots__ = ("_loop", "_sleeper", "interrupted", "rng")

    def __init__(self, rng: random.Random, loop: asyncio.AbstractEventLoop) -> None:
        self.rng = rng
        self._loop = loop
        self.interrupted = False
        self._sleeper: asyncio.Future[bool] | None = None

    def now(self) -> float:
        return self._loop.time()

    async def sleep(self, seconds: float) -> bool:
        if self.interrupted:
            return False
        fut: asyncio.Future[bool] = self._loop.create_future()
        handle = self._loop.call_later(seconds, _resolve, fut, True) if seconds != float("inf") else None
        self._sleeper = fut
        try:
            return await fut
        finally:
            self._sleeper = None
            if handle is not None:
                handle.cancel()

    async def hold(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def interrupt(self) -> None:
        self.interrupted = True
        if self._sleeper is not None:
            _resolve(self._sleeper, False)


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class _Slot:
    __slots__ = ("ctx", "entry", "removed", "stage")

    def __init__(self, entry: ToxicEntry, stage: Stage, ctx: _StageContext) -> None:
        self.entry = entry
        self.stage = stage
        self.ctx = ctx
        self.removed = False


_STOP = object()
_IDLE = object()


class Link:
    """One direction of a connection."""

    def __init__(self, conn: Connection, direction: str, src: Side, dst: Side, counter: Any) -> None:
        self.conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        self._counter = counter
        self._loop = asyncio.get_running_loop()
        self.slots: list[_Slot] = []
        self._decided: dict[str, tuple[ToxicEntry, _Slot | None]] = {}
        self._counted: set[int] = set()
        self.queue: deque[Chunk | None] = deque()
        self._queued = 0
        self.pump: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._dst_paused = False
        self._queue_full = False
        self._src_paused = False
        self._eof = False
        self._early: list[bytes] = []
        self._started = False
        self._early_eof = False

    # -- reading side (called from the source's protocol)

    def feed(self, data: bytes) -> None:
        if self.pump is None:  # the fast path: straight to the other socket
            transport = self.dst.transport
            if not self._started:  # upstream still connecting (uvloop reads anyway): keep order
                self._hold_early(data)
            elif transport is not None and not transport.is_closing():
                self._counter.inc(len(data))
                transport.write(data)
            return
        self.queue.append(Chunk(data, self._loop.time()))
        self._queued += len(data)
        if self._queued > _QUEUE_LIMIT and not self._queue_full:
            self._queue_full = True
            self._update_reading()
        self._wake()

    def _hold_early(self, data: bytes) -> None:
        self._early.append(data)
        transport = self.src.transport
        if sum(map(len, self._early)) > _QUEUE_LIMIT and transport is not None:
            transport.pause_reading()

    def start(self) -> None:
        """Upstream is connected and toxics applied: send what came meanwhile, then read on."""
        self._started = True
        early, self._early = self._early, []
        for data in early:
            self.feed(data)
        if self._early_eof:
            self.feed_eof()
            return
        self._update_reading()
        transport = self.src.transport
        if transport is not None and not transport.is_closing() and not self._src_paused:
            transport.resume_reading()

    def feed_eof(self) -> None:
        if not self._started:
            self._early_eof = True  # delivered after what came before it
            return
        if self._eof:
            return
        self._eof = True
        if self.pump is None:
            self.conn.close()  # Toxiproxy parity: either side closing tears down both
        else:
            self.queue.append(None)
            self._wake()

    def dst_paused(self, paused: bool) -> None:
        self._dst_paused = paused
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.src.transport
        if transport is None or transport.is_closing():
            return
        want_paused = self._dst_paused or self._queue_full
        if want_paused != self._src_paused:
            self._src_paused = want_paused
            (transport.pause_reading if want_paused else transport.resume_reading)()

    def _write(self, data: bytes) -> None:
        transport = self.dst.transport
        if transport is not None and not transport.is_closing():
            self._counter.inc(len(data))
            transport.write(data)

    # -- toxics

    def set_toxics(self, entries: list[ToxicEntry]) -> list[ToxicEntry]:
        """Apply this direction's toxics now; return the ones active on this link for the
        first time (an update draws toxicity again but is not a new injection)."""
        applied: list[ToxicEntry] = []
        decided: dict[str, tuple[ToxicEntry, _Slot | None]] = {}
        for entry in entries:
            old = self._decided.pop(entry.name, None)
            if old is not None and old[0] is entry:
                decided[entry.name] = old
                continue
            previous = old[1] if old is not None else None
            if previous is not None:
                previous.removed = True
                previous.ctx.interrupt()  # an updated stage releases what it holds
            slot = None
            if roll(entry.toxicity, entry.rng):
                ctx = _StageContext(entry.rng, self._loop)
                slot = _Slot(entry, entry.toxic.stage(ctx, previous.stage if previous else None), ctx)
                if entry.uid not in self._counted:
                    self._counted.add(entry.uid)
                    applied.append(entry)
            decided[entry.name] = (entry, slot)
        close = False
        for _, slot in self._decided.values():  # the removed toxics
            if slot is not None:
                slot.removed = True
                slot.ctx.interrupt()
                close = close or slot.stage.close_on_remove
        self._decided = decided
        self.slots = [slot for _, slot in decided.values() if slot is not None]
        if self.slots and self.pump is None and not self.conn.closed:
            self.pump = self._loop.create_task(self._run_pump())
        self._wake()
        if close:
            self._loop.call_soon(self.conn.close)
        return applied

    def _wake(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter, None)

    # -- the pump (only while this direction has active toxics)

    async def _run_pump(self) -> None:
        try:
            while True:
                item = await self._next()
                if item is _STOP:
                    return
                if item is _IDLE:
                    continue
                if item is None:
                    for slot in self.slots:
                        if not slot.removed:
                            await slot.stage.eof(slot.ctx)
                    raise CloseLink()
                await self._run(item, self.slots, 0)  # type: ignore[arg-type]
        except CloseLink as signal:
            self.conn.close(reset=signal.reset)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("toxic_failed", route=self.conn.proxy.name, connection_id=self.conn.id)
            self.conn.close()

    async def _next(self) -> object:
        while True:
            if self.queue:
                item = self.queue.popleft()
                if item is not None:
                    self._queued -= len(item.data)
                    if self._queue_full and self._queued <= _QUEUE_LIMIT // 2:
                        self._queue_full = False
                        self._update_reading()
                return item
            if not self.slots:
                self.pump = None  # back to the fast path; nothing is queued, so order holds
                return _STOP
            deadline = min((s.stage.deadline for s in self.slots if s.stage.deadline is not None), default=None)
            now = self._loop.time()
            if deadline is not None and deadline <= now:
                for slot in self.slots:
                    if slot.stage.deadline is not None and slot.stage.deadline <= now:
                        await slot.stage.on_deadline(slot.ctx)
                        if slot.stage.deadline is not None and slot.stage.deadline <= now:
                            slot.stage.deadline = None
                return _IDLE
            self._waiter = self._loop.create_future()
            handle = self._loop.call_later(deadline - now, _resolve, self._waiter, None) if deadline else None
            try:
                await self._waiter
            finally:
                self._waiter = None
                if handle is not None:
                    handle.cancel()

    async def _run(self, chunk: Chunk, slots: list[_Slot], index: int) -> None:
        while index < len(slots) and slots[index].removed:
            index += 1
        if index == len(slots):
            self._write(chunk.data)
            return
        slot, after = slots[index], index + 1
        await slot.stage.push(chunk, slot.ctx, lambda c: self._run(c, slots, after))

    def stop(self) -> None:
        for slot in self.slots:
            slot.ctx.interrupt()
        pump = self.pump
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
