"""Fixtures of the observability tests: a real Prometheus, a real OTLP receiver, the demo's bundle."""

from tests.demo.conftest import bundle, demo_cache, http  # noqa: F401  (fixtures, shared with the demo tests)
from tests.observe.otlp_receiver import otlp  # noqa: F401
from tests.observe.prometheus_fixture import prometheus_factory  # noqa: F401
