"""``steady_state.cost``: where the CPU-seconds (and joules) of the serving stack come from.

    cost: {prometheus: http://prom:9090, query: process_cpu_seconds_total, jobs: [model-api, gpu-worker]}
    cost: {pidfiles: [/run/model-api.pid, /run/gpu-worker.pid]}   # relative to the experiment file
    cost: {}        # the demo's own processes (``brownout demo`` knows their pidfiles)

``query`` is a selector of a CPU-seconds counter; the interval's cost is
``sum(increase(query{job=~"jobs"}[interval]))``. Energy comes from RAPL wherever readable.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from brownout.experiment.probes import FrozenModel, PrometheusAuth, Timeout, http_url
from brownout.experiment.types import RelPath

# A metric name with optional label matchers: what can take a [range] in increase().
_SELECTOR = re.compile(r'^[A-Za-z_:][A-Za-z0-9_:]*(\{[^{}]*\})?$')


class CostSpec(FrozenModel):
    prometheus: str | None = None
    query: str = "process_cpu_seconds_total"
    jobs: tuple[str, ...] = ()
    auth: PrometheusAuth | None = None
    timeout: Timeout = 5.0
    pidfiles: tuple[RelPath, ...] = Field(default=(), description="pid files of processes on this machine")

    @field_validator("prometheus")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("query")
    @classmethod
    def _selector(cls, value: str) -> str:
        if not _SELECTOR.match(value.strip()):
            raise ValueError("must be a counter selector such as process_cpu_seconds_total{job=\"api\"} "
                             "(it is wrapped in increase(...[interval]))")
        return value.strip()

    @model_validator(mode="after")
    def _one_source(self) -> CostSpec:
        if self.prometheus is not None and self.pidfiles:
            raise ValueError("give 'prometheus' or 'pidfiles', not both")
        if self.prometheus is None and (self.jobs or self.auth is not None):
            raise ValueError("'jobs' and 'auth' need 'prometheus'")
        return self
