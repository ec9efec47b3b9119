"""A bounded export queue that never blocks the thread that fills it.

Finished spans go into a bounded deque (an append: no lock taken, nothing waited for); a
worker thread hands them to ``export`` in batches every ``delay_s``, or as soon as a batch is
full. When the queue is full a span is dropped and counted, and a warning is logged at most
every ``_WARN_EVERY_S``. ``shutdown(timeout_s)`` exports what is left within the timeout, then
gives up (what is still queued is counted as lost): stopping never waits on a dead collector.
The items are whatever ``export`` takes (the proxy's span records, or SDK spans).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger("brownout.tracing")

T = TypeVar("T")
_WARN_EVERY_S = 10.0


class ExportQueue(Generic[T]):
    def __init__(self, export: Callable[[Sequence[T]], bool], *, stop: Callable[[], None] = lambda: None,
                 queue_size: int = 2048, batch_size: int = 512, delay_s: float = 1.0,
                 name: str = "brownout-trace-export") -> None:
        self._export_batch = export
        self._stop_exporter = stop  # cuts short an export that is retrying
        self._queue: deque[T] = deque()
        self._size = queue_size
        self._batch = min(batch_size, queue_size)
        self._delay = delay_s
        self._wake = threading.Event()
        self._stopping = False
        self._gave_up = False  # shutdown's time is up: the worker exports nothing more
        self.exported = 0  # spans the collector accepted
        self.dropped = 0   # spans refused because the queue was full (or came after shutdown)
        self.failed = 0    # spans in batches the collector did not accept
        self.lost = 0      # spans still queued when shutdown gave up
        self._dropped_since_warning = 0
        self._warned_at = 0.0
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    # -- the filling side (the event loop's thread)

    def put(self, item: T) -> None:
        queue = self._queue
        if self._stopping or len(queue) >= self._size:
            self._drop()
            return
        queue.append(item)
        if len(queue) >= self._batch:
            self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        self._dropped_since_warning += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            log.warning("trace_spans_dropped", dropped=self._dropped_since_warning, queue_size=self._size,
                        why="the export queue is full: the collector is slow or unreachable")
            self._warned_at, self._dropped_since_warning = now, 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- the worker

    def _work(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._export_queued()
        self._export_queued()

    def _export_queued(self) -> None:
        queue = self._queue
        while queue and not self._gave_up:
            batch = [queue.popleft() for _ in range(min(self._batch, len(queue)))]
            try:
                ok = self._export_batch(batch)
            except Exception:
                log.exception("trace_export_failed", spans=len(batch))
                ok = False
            if ok:
                self.exported += len(batch)
            else:
                self.failed += len(batch)

    # -- lifecycle

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wake the worker and wait until the queue is empty (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while self._queue and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export what is queued within ``timeout_s``, then stop the exporter; never waits longer."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s)
        self._gave_up = True
        self._stop_exporter()
        self.lost = len(self._queue)
        self._queue.clear()
        log.info("trace_export_stopped", exported=self.exported, dropped=self.dropped, failed=self.failed,
                 lost=self.lost, in_time=not self._thread.is_alive())
