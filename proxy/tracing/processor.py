"""A bounded batch span processor that never blocks the thread that ends spans.

Ended spans go into a bounded queue (a deque append: no lock taken, nothing waited for); a
worker thread exports them in batches every ``delay_s`` (or as soon as a batch is full). When
the queue is full the span is dropped and counted, and a warning is logged at most every
``_WARN_EVERY_S``. The SDK's own ``BatchSpanProcessor`` drops too, but neither counts what it
dropped where we can read it nor bounds its shutdown. ``shutdown(timeout_s)`` exports what is
left within the timeout, then gives up (what is still queued is counted as lost).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = structlog.get_logger("brownout.tracing")

_WARN_EVERY_S = 10.0


class BoundedBatchProcessor(SpanProcessor):
    def __init__(self, exporter: SpanExporter, *, queue_size: int = 2048, batch_size: int = 512,
                 delay_s: float = 1.0, name: str = "brownout-trace-export") -> None:
        self._exporter = exporter
        self._queue: deque[ReadableSpan] = deque()
        self._size = queue_size
        self._batch = min(batch_size, queue_size)
        self._delay = delay_s
        self._wake = threading.Event()
        self._stopping = False
        self.exported = 0  # spans the collector accepted
        self.dropped = 0   # spans refused because the queue was full
        self.failed = 0    # spans in batches the exporter could not deliver
        self.lost = 0      # spans still queued when shutdown gave up
        self._dropped_since_warning = 0
        self._warned_at = 0.0
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    # -- the span side (the event loop's thread)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping:
            self.dropped += 1
            return
        queue = self._queue
        if len(queue) >= self._size:
            self.dropped += 1
            self._dropped_since_warning += 1
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY_S:
                log.warning("trace_spans_dropped", dropped=self._dropped_since_warning, queue_size=self._size,
                            why="the export queue is full: the collector is slow or unreachable")
                self._warned_at, self._dropped_since_warning = now, 0
            return
        queue.append(span)
        if len(queue) >= self._batch:
            self._wake.set()

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
        while queue:
            batch = [queue.popleft() for _ in range(min(self._batch, len(queue)))]
            self._export(batch)

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        try:
            result: Any = self._exporter.export(batch)
        except Exception:
            log.exception("trace_export_failed", spans=len(batch))
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.exported += len(batch)
        else:
            self.failed += len(batch)

    # -- lifecycle

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wake the worker and wait until the queue is empty (at most ``timeout_millis``)."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._wake.set()
        while self._queue and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue

    def shutdown(self, timeout_s: float = 5.0) -> None:  # type: ignore[override]
        """Export what is queued within ``timeout_s``, then stop the exporter; never waits longer."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s)
        self._exporter.shutdown()  # also cuts short an export that is retrying
        self.lost = len(self._queue)
        self._queue.clear()
        log.info("trace_export_stopped", exported=self.exported, dropped=self.dropped, failed=self.failed,
                 lost=self.lost, in_time=not self._thread.is_alive())
