"""Fixtures of the observability tests: a real Prometheus, and the demo stack's trained bundle."""

from tests.demo.conftest import bundle, demo_cache, http  # noqa: F401  (fixtures, shared with the demo tests)
from tests.observe.prometheus_fixture import prometheus_factory  # noqa: F401
