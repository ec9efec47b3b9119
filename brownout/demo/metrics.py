"""Prometheus metrics of the demo services, each on its own ``GET /metrics``.

Every service owns a registry (several services share one interpreter in tests), with the
process collector (``process_cpu_seconds_total``: cost per prediction) and, per service:

| metric | type | labels |
| ``demo_<service>_requests_total`` | counter | ``endpoint`` (route template), ``status`` |
| ``demo_<service>_request_duration_seconds`` | histogram | ``endpoint`` |
| ``demo_model_api_predictions_total`` | counter | ``outcome``: scored, degraded, cached |
| ``demo_model_api_fallbacks_total`` | counter | ``reason``: see ``pipeline.FALLBACK_REASONS`` |
| ``demo_model_api_upstream_attempts_total`` | counter | ``upstream``, ``replica``, ``attempt`` (first, retry), ``outcome`` |
| ``demo_model_api_cache_lookups_total`` | counter | ``result``: hit, miss |
| ``demo_gpu_worker_queue_depth`` | gauge | (requests waiting, read at scrape time) |
| ``demo_gpu_worker_batch_size`` | histogram | (rows per batch) |
| ``demo_gpu_worker_batches_total``, ``demo_gpu_worker_rejected_total`` | counter | |

``<service>`` is ``model_api``, ``gpu_worker`` or ``feature_store``. Labels stay few:
endpoints are route templates, statuses are codes, reasons a fixed set. Upstream attempts
with ``attempt="retry"`` over those with ``attempt="first"`` is the model API's own retry
amplification; ``replica`` (0, 1, ...) shows failover.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from .pipeline import FALLBACK_REASONS, Prediction, fallback_reason
from .retry import OUTCOMES

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
METRICS_PATH = "/metrics"
_UNMATCHED = "unmatched"  # 404s and the like: one label value, never the raw path


class ServiceMetrics:
    """One service's registry, its request counters and the ``/metrics`` route."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        prefix = f"demo_{service}"
        self._requests = Counter(f"{prefix}_requests", f"Requests the {service} answered, by endpoint and status",
                                 ["endpoint", "status"], registry=self.registry)
        self._duration = Histogram(f"{prefix}_request_duration_seconds", f"Time the {service} took to answer",
                                   ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        # Resolved children, so the request path skips prometheus_client's label lookup.
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:
            children = (self._requests.labels(endpoint, str(status)), self._duration.labels(endpoint))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def install(self, app: web.Application) -> None:
        """Count every request but the scrape itself, and serve ``GET /metrics``."""
        app.middlewares.append(_middleware(self))

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.router.add_get(METRICS_PATH, metrics)


def _endpoint(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return _UNMATCHED if resource is None else resource.canonical


def _middleware(metrics: ServiceMetrics) -> Middleware:
    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = _endpoint(request)
        if endpoint == METRICS_PATH:
            return await handler(request)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.record(endpoint, status, time.perf_counter() - started)

    return count


class ModelApiMetrics(ServiceMetrics):
    """Predictions by outcome, fallbacks by reason, upstream attempts by outcome."""

    def __init__(self) -> None:
        super().__init__("model_api")
        r = self.registry
        predictions = Counter("demo_model_api_predictions", "Predictions made, by outcome (scored, degraded, cached)",
                              ["outcome"], registry=r)
        fallbacks = Counter("demo_model_api_fallbacks",
                            "Predictions made in a degraded mode (default features, GPU fallback score), by why",
                            ["reason"], registry=r)
        self._attempts = Counter("demo_model_api_upstream_attempts",
                                 "Calls to an upstream replica, first tries and retries, by outcome",
                                 ["upstream", "replica", "attempt", "outcome"], registry=r)
        self._outcomes = {o: predictions.labels(o) for o in ("scored", "degraded", "cached")}
        self._fallbacks = {reason: fallbacks.labels(reason) for reason in FALLBACK_REASONS}
        self._attempt_children: dict[tuple[str, int, bool, str], Counter] = {}

    def attempted(self, upstream: str, replica: int, retry: bool, outcome: str) -> None:
        key = (upstream, replica, retry, outcome)
        child = self._attempt_children.get(key)
        if child is None:
            assert outcome in OUTCOMES, outcome
            child = self._attempts.labels(upstream, str(replica), "retry" if retry else "first", outcome)
            self._attempt_children[key] = child
        child.inc()

    def predicted(self, predictions: Sequence[Prediction]) -> None:
        for p in predictions:
            if p.degraded_reason is not None:
                self._outcomes["degraded"].inc()
                self._fallbacks[fallback_reason(p.degraded_reason)].inc()
            else:
                self._outcomes["cached" if p.cached else "scored"].inc()

    def watch_cache(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Export the cache's own hit/miss counts (read at scrape time)."""
        self.registry.register(_CacheCollector(counts))


class _CacheCollector(Collector):
    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        hits, misses = self._counts()
        family = CounterMetricFamily("demo_model_api_cache_lookups", "Score cache lookups, by result",
                                     labels=["result"])
        family.add_metric(["hit"], hits)
        family.add_metric(["miss"], misses)
        yield family


class WorkerMetrics(ServiceMetrics):
    """Queue depth and rejections read from the batcher at scrape time; batch sizes as they run."""

    def __init__(self) -> None:
        super().__init__("gpu_worker")
        self.batch_size = Histogram("demo_gpu_worker_batch_size", "Rows per batch the worker ran",
                                    buckets=BATCH_BUCKETS, registry=self.registry)

    def watch_batcher(self, read: Callable[[], tuple[int, int, int]]) -> None:
        """``read`` returns (queue depth, batches run, requests rejected)."""
        self.registry.register(_BatcherCollector(read))


class _BatcherCollector(Collector):
    def __init__(self, read: Callable[[], tuple[int, int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        depth, batches, rejected = self._read()
        yield GaugeMetricFamily("demo_gpu_worker_queue_depth", "Requests waiting for a batch now", value=depth)
        yield CounterMetricFamily("demo_gpu_worker_batches", "Batches the worker ran", value=batches)
        yield CounterMetricFamily("demo_gpu_worker_rejected", "Requests refused with 503 because the queue was full",
                                  value=rejected)
