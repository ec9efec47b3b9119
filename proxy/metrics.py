"""Prometheus metrics. The names are a contract (DESIGN §2; the Grafana dashboard uses them).

Each proxy process owns one ``ProxyMetrics`` with its own registry, so tests can run several
proxies in one interpreter without clashing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ProxyMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total & co: the proxy's own cost
        self._requests = _RequestsCollector()
        r.register(self._requests)
        self.faults_injected = Counter("brownout_faults_injected", "Fault injections, by route and kind", ["route", "kind"], registry=r)
        self.active_faults = Gauge("brownout_active_faults", "Faults (and toxics) active now", ["route"], registry=r)
        self.upstream_errors = Counter("brownout_upstream_errors", "Failures talking to the upstream", ["route", "cause"], registry=r)
        self.tcp_bytes = Counter("brownout_tcp_bytes", "Bytes relayed on tcp routes", ["route", "direction"], registry=r)
        self.fault_errors = Counter("brownout_fault_errors", "Exceptions raised inside faults (request carried on)", ["route", "kind"], registry=r)

    def route_requests(self, route: str) -> RouteRequests:
        """The per-request counters of one http route (``brownout_requests_total`` and
        ``brownout_request_duration_seconds``)."""
        return self._requests.routes.setdefault(route, RouteRequests())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RouteRequests:
    """Requests of one route, counted with plain integers: ``record`` is on every request's path,
    where prometheus_client's locked Counter and Histogram cost more than the rest of it together."""

    __slots__ = ("statuses", "buckets", "seconds")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0

    def record(self, status: int, seconds: float) -> None:
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self.buckets[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self.seconds += seconds


class _RequestsCollector(Collector):
    def __init__(self) -> None:
        self.routes: dict[str, RouteRequests] = {}

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("brownout_requests", "Requests served, by route and status", labels=["route", "status"])
        duration = HistogramMetricFamily("brownout_request_duration_seconds", "Time to serve a request through the proxy",
                                         labels=["route"])
        for route, counts in self.routes.items():
            for status, n in sorted(counts.statuses.items()):
                requests.add_metric([route, str(status)], n)
            cumulative, buckets = 0, []
            for bound, n in zip((*_LATENCY_BUCKETS, float("inf")), counts.buckets, strict=True):
                cumulative += n
                buckets.append((_bound_label(bound), cumulative))
            duration.add_metric([route], buckets, counts.seconds)
        yield requests
        yield duration


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
