"""OpenTelemetry traces of the proxy (and, through the same pieces, of the runner, the load
generator and the demo's services), sent as OTLP/HTTP protobuf.

Off by default. ``install_tracing`` reads the config's ``tracing:`` block and the OTEL_*
variables (``settings``); when on, every http route gets a ``TracingObserver`` on its
observer seam, and the proxy's /metrics gains the export counters. Spans are plain records
encoded by hand (``records``), not the OpenTelemetry SDK's: on the data path the SDK costs
several times what the proxy spends forwarding a request (``benchmarks/tracing_bench.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.tracing.context import Sampler
from proxy.tracing.settings import TracingSettings, resolve_tracing

if TYPE_CHECKING:
    from proxy.config import ProxyConfig
    from proxy.http_route import HttpRoute
    from proxy.metrics import ProxyMetrics
    from proxy.tracing.exporter import SpanExport

log = structlog.get_logger("brownout.tracing")

FLUSH_TIMEOUT_S = 5.0  # at most this long is spent exporting what is queued when the proxy stops


class ProxyTracing:
    def __init__(self, settings: TracingSettings, export: SpanExport) -> None:
        self.settings = settings
        self.export = export

    async def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Flush within ``timeout_s`` (off the event loop), then stop the exporter."""
        await asyncio.to_thread(self.export.close, timeout_s)


def install_tracing(config: ProxyConfig, routes: Sequence[HttpRoute], metrics: ProxyMetrics,
                    env: Mapping[str, str] | None = None) -> ProxyTracing | None:
    """Trace ``routes`` when the config or the environment says so; None when tracing is off."""
    env = os.environ if env is None else env
    settings = resolve_tracing(config.tracing, env, default_service="brownout")
    if settings is None:
        return None
    from proxy.tracing.exporter import SpanExport
    from proxy.tracing.observer import TracingObserver

    export = SpanExport(settings, env)
    sampler = Sampler(settings.sample_ratio, settings.follow_parent)
    for route in routes:
        route.observers.append(TracingObserver(route.config, export, sampler))
    metrics.registry.register(_ExportCollector(export))
    log.info("tracing_enabled", endpoint=settings.endpoint, sample_ratio=settings.sample_ratio,
             parent_based=settings.follow_parent, service_name=settings.service_name)
    return ProxyTracing(settings, export)


class _ExportCollector(Collector):
    """``brownout_trace_spans_{exported,dropped,failed}_total`` and the queue's length."""

    def __init__(self, export: SpanExport) -> None:
        self._queue = export.queue

    def collect(self) -> Iterator[Metric]:
        p = self._queue
        for name, value, doc in (("exported", p.exported, "Spans the trace collector accepted"),
                                 ("dropped", p.dropped, "Spans dropped because the export queue was full"),
                                 ("failed", p.failed, "Spans in export batches the collector did not accept")):
            yield CounterMetricFamily(f"brownout_trace_spans_{name}", doc, value=value)
        yield GaugeMetricFamily("brownout_trace_spans_queued", "Spans waiting for export", value=p.queued)
