"""Prometheus metrics. The names are a contract (DESIGN §2; the Grafana dashboard uses them).

Each proxy process owns one ``ProxyMetrics`` with its own registry, so tests can run several
proxies in one interpreter without clashing.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ProxyMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("brownout_requests", "Requests served, by route and status", ["route", "status"], registry=r)
        self.request_duration = Histogram(
            "brownout_request_duration_seconds", "Time to serve a request through the proxy", ["route"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.faults_injected = Counter("brownout_faults_injected", "Fault injections, by route and kind", ["route", "kind"], registry=r)
        self.active_faults = Gauge("brownout_active_faults", "Faults (and toxics) active now", ["route"], registry=r)
        self.upstream_errors = Counter("brownout_upstream_errors", "Failures talking to the upstream", ["route", "cause"], registry=r)
        self.tcp_bytes = Counter("brownout_tcp_bytes", "Bytes relayed on tcp routes", ["route", "direction"], registry=r)
        self.fault_errors = Counter("brownout_fault_errors", "Exceptions raised inside faults (request carried on)", ["route", "kind"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
