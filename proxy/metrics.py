"""Prometheus metrics. The names are a contract (docs/architecture.md, "Metrics"; the Grafana dashboard uses them).

Each proxy process owns one ``ProxyMetrics`` with its own registry, so tests can run several
proxies in one interpreter without clashing.

What the capacity checks read (all per http route):

* ``brownout_requests_total{route,status}`` — the arrivals: every request the route parsed,
  counted once when it ends, whoever answered it (upstream, a fault such as a 429, or the
  proxy itself: 400, 413, 502, 504; 499 when the client left or the connection was reset).
  Only what never became a request is not in it: malformed heads, connections refused over
  ``max_connections`` or by connection-phase faults. A window's arrivals are the increase.
* ``brownout_fault_rejections_total{route,kind,reason}`` — requests a capacity fault refused:
  ``rate_limit`` by ``requests`` or ``tokens``, ``concurrency_limit`` by ``queue_full`` or
  ``queue_timeout`` (any fault that reports ``rejected=<reason>``).
* ``brownout_retry_after_violations_total{route}`` — requests that came back before the
  ``Retry-After`` a fault gave them (see ``proxy.retry_after``); present, at 0, from the start.
* ``brownout_fault_queue_depth{route,fault}`` and ``brownout_fault_in_flight{route,fault}`` —
  gauges, per active fault (by id) whose state has a queue: requests waiting, slots in use.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
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
        self.fault_rejections = Counter("brownout_fault_rejections", "Requests a capacity fault refused, by route, kind and "
                                        "reason", ["route", "kind", "reason"], registry=r)
        self.retry_after_violations = Counter("brownout_retry_after_violations", "Requests that came back before the "
                                              "Retry-After a fault gave them", ["route"], registry=r)
        self._fault_states = _FaultStateCollector()
        r.register(self._fault_states)
        self._injected: dict[tuple[str, str], Any] = {}

    def fault_injected(self, route: str, kind: str) -> Any:
        """``faults_injected``'s child for ``route`` and ``kind``, kept (``labels()`` costs more than ``inc()``)."""
        child = self._injected.get((route, kind))
        if child is None:
            child = self._injected[(route, kind)] = self.faults_injected.labels(route, kind)
        return child

    def watch_fault_states(self, source: Callable[[], Iterable[tuple[str, str, Any]]]) -> None:
        """``source()`` gives (route, fault id, state) of the active faults; read at every scrape."""
        self._fault_states.source = source

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


class _FaultStateCollector(Collector):
    """Gauges read from the state of active faults at scrape time (nothing on the request path)."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[tuple[str, str, Any]]] = lambda: ()

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("brownout_fault_queue_depth", "Requests waiting in a fault's queue",
                                  labels=["route", "fault"])
        in_flight = GaugeMetricFamily("brownout_fault_in_flight", "Slots in use of a fault that limits concurrency",
                                      labels=["route", "fault"])
        for route, fault_id, state in self.source():
            if hasattr(state, "queue_depth") and hasattr(state, "in_flight"):
                depth.add_metric([route, fault_id], state.queue_depth)
                in_flight.add_metric([route, fault_id], state.in_flight)
        yield depth
        yield in_flight


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
