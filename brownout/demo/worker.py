"""GPU worker: scores feature rows with dynamic batching behind a bounded queue.

``POST /v1/score`` ``{"instances": [[...15 features...], ...]}`` → ``{"scores": [...]}``.

Requests wait in a bounded queue; one batcher takes the oldest, then keeps collecting
until the batch has ``max_batch`` rows or ``max_wait_ms`` has passed (Triton's dynamic
batcher), and "runs it on the GPU": a sleep of ``batch_ms + row_ms * rows`` (the device
time a small model takes) followed by the real model. When the queue is full the request
is refused at once with 503, ``Retry-After`` and ``{"error": ..., "code": "queue_full"}`` —
the queue overflow real inference servers show under a spike. ``GET /metrics`` shows the
queue depth, batch sizes and rejections (``metrics.py``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from faults.errors import InvalidInput

from .features import N_FEATURES
from .metrics import WorkerMetrics
from .model import DemoModel
from .tracing import install_tracing
from .web import MAX_BODY_BYTES, bad_json, error, invalid, read_json


@dataclass(frozen=True)
class WorkerSettings:
    max_batch: int = 32            # rows per batch
    max_wait_ms: float = 2.0       # how long the first request waits for company
    queue_size: int = 64           # requests waiting (not rows); beyond it → 503
    batch_ms: float = 2.0          # simulated device time per batch...
    row_ms: float = 0.05           # ...plus per row
    retry_after_s: int = 1
    max_rows_per_request: int = 256

    def __post_init__(self) -> None:
        for name in ("max_batch", "queue_size", "retry_after_s", "max_rows_per_request"):
            if getattr(self, name) < 1:
                raise InvalidInput("must be >= 1", name)
        for name in ("max_wait_ms", "batch_ms", "row_ms"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise InvalidInput("must be a finite number >= 0", name)


class QueueFull(Exception):
    """The bounded queue has no room; the caller answers 503."""


@dataclass
class _Job:
    rows: np.ndarray
    future: asyncio.Future[np.ndarray]


@dataclass
class BatchStats:
    batches: int = 0
    rows: int = 0
    rejected: int = 0
    max_batch_rows: int = 0
    queue_depth: int = 0


@dataclass
class Batcher:
    model: DemoModel
    settings: WorkerSettings
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    stats: BatchStats = field(default_factory=BatchStats)
    on_batch: Callable[[int], None] | None = None  # told each batch's rows (metrics)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=self.settings.queue_size)
        self._arrived = asyncio.Event()

    @property
    def depth(self) -> int:
        """Requests waiting now."""
        return self._queue.qsize()

    def submit(self, rows: np.ndarray) -> asyncio.Future[np.ndarray]:
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(rows, future))
        except asyncio.QueueFull:
            self.stats.rejected += 1
            raise QueueFull from None
        self._arrived.set()
        return future

    async def _collect(self) -> list[_Job]:
        jobs = [await self._queue.get()]
        n_rows = jobs[0].rows.shape[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_wait_ms / 1000
        while n_rows < self.settings.max_batch:
            while n_rows < self.settings.max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                n_rows += jobs[-1].rows.shape[0]
            remaining = deadline - loop.time()
            if n_rows >= self.settings.max_batch or remaining <= 0:
                break
            self._arrived.clear()
            try:  # waiting on an Event (not on queue.get) never loses a queued job
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
        return jobs

    async def run(self) -> None:
        while True:
            jobs = await self._collect()
            self.stats.queue_depth = self._queue.qsize()
            batch = np.vstack([j.rows for j in jobs])
            n_rows = int(batch.shape[0])
            try:
                await self.sleep((self.settings.batch_ms + self.settings.row_ms * n_rows) / 1000)
                scores = self.model.score(batch)
            except Exception as exc:  # a failed batch fails its requests, never the batcher
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            self.stats.batches += 1
            self.stats.rows += n_rows
            self.stats.max_batch_rows = max(self.stats.max_batch_rows, n_rows)
            if self.on_batch is not None:
                self.on_batch(n_rows)
            start = 0
            for j in jobs:
                end = start + j.rows.shape[0]
                if not j.future.done():  # the client may have gone away
                    j.future.set_result(scores[start:end])
                start = end


def parse_instances(body: Any, max_rows: int) -> np.ndarray:
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise InvalidInput("must be a list of feature rows", "instances")
    rows = body["instances"]
    if not rows or len(rows) > max_rows:
        raise InvalidInput(f"must hold 1 to {max_rows} rows", "instances")
    for i, row in enumerate(rows):
        if (not isinstance(row, list) or len(row) != N_FEATURES
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)):
            raise InvalidInput(f"each row must be a list of {N_FEATURES} numbers", f"instances[{i}]")
    array = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(array).all():
        raise InvalidInput("rows must hold finite numbers", "instances")
    return array


def create_app(model: DemoModel, settings: WorkerSettings = WorkerSettings()) -> web.Application:
    batcher_key = web.AppKey("batcher", Batcher)
    retry_after = {"Retry-After": str(settings.retry_after_s)}

    async def score(request: web.Request) -> web.Response:
        try:
            body = await read_json(request)
        except InvalidInput as exc:
            return bad_json(exc)
        try:
            rows = parse_instances(body, settings.max_rows_per_request)
        except InvalidInput as exc:
            return invalid(exc)
        batcher = request.app[batcher_key]
        try:
            future = batcher.submit(rows)
        except QueueFull:
            return error(503, "GPU worker queue is full", code="queue_full", headers=retry_after)
        try:
            scores = await future
        except Exception as exc:
            return error(500, f"scoring failed: {exc}")
        return web.json_response({"scores": [float(s) for s in scores], "model_version": model.version})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model_version": model.version})

    async def stats(request: web.Request) -> web.Response:
        s = request.app[batcher_key].stats
        return web.json_response({"batches": s.batches, "rows": s.rows, "rejected": s.rejected,
                                  "max_batch_rows": s.max_batch_rows, "queue_size": settings.queue_size})

    async def batching(app: web.Application) -> Any:
        batcher = app[batcher_key] = Batcher(model, settings, on_batch=metrics.batch_size.observe)
        metrics.watch_batcher(lambda: (batcher.depth, batcher.stats.batches, batcher.stats.rejected))
        task = asyncio.create_task(app[batcher_key].run())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    metrics = WorkerMetrics()
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    metrics.install(app)
    install_tracing(app, "brownout-demo-gpu-worker")
    app.cleanup_ctx.append(batching)
    app.router.add_post("/v1/score", score)
    app.router.add_get("/healthz", health)
    app.router.add_get("/v2/health/ready", health)
    app.router.add_get("/stats", stats)
    return app
