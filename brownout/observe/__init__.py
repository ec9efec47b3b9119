"""Observability the user already has: Prometheus queries (``promql``), PromQL probes judged
against bounds (``probes``), and the cost of a run in CPU-seconds and joules (``cost``)."""
