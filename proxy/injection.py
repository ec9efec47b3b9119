"""Running the faults selected for one request, each call isolated.

An exception inside a fault is logged and counted, and the request carries on without
that fault; ``CancelledError`` and ``FaultAborted`` always propagate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog

from faults import PROCEED, Exchange, Outcome, Proceed
from faults.errors import FaultAborted
from proxy.leases import ActiveFault
from proxy.metrics import ProxyMetrics

log = structlog.get_logger("brownout.proxy")


class Injection:
    """The faults that apply to one request, and the exchange they share."""

    __slots__ = ("faults", "ex", "_metrics")

    def __init__(self, faults: tuple[ActiveFault, ...], ex: Exchange, metrics: ProxyMetrics) -> None:
        self.faults = faults
        self.ex = ex
        self._metrics = metrics
        for active in faults:
            metrics.faults_injected.labels(ex.route, active.type).inc()
            log.info("fault_injected", fault_id=active.id, kind=active.type, route=ex.route, request_id=ex.request_id)

    @property
    def ids(self) -> str:
        return ",".join(f.id for f in self.faults)

    def uses(self, hook: str) -> bool:
        return any(hook in f.hooks for f in self.faults)

    async def run(self, hook: str) -> Outcome:
        """Call ``hook`` on each fault in order; the first non-``Proceed`` outcome wins."""
        for active in self.faults:
            if hook not in active.hooks or active.removed:
                continue
            self.ex.sleep = active.sleep
            try:
                outcome = await getattr(active.fault, hook)(self.ex)
            except (asyncio.CancelledError, FaultAborted):
                raise
            except Exception:
                self._failed(active, hook)
                continue
            if not isinstance(outcome, Proceed):
                return outcome
        return PROCEED

    def wrap(self, hook: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        for active in self.faults:
            if hook in active.hooks:
                chunks = self._guarded(active, hook, chunks)
        return chunks

    async def _guarded(self, active: ActiveFault, hook: str, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        wrapped: Any = getattr(active.fault, hook)(self.ex, source)
        while True:
            self.ex.sleep = active.sleep  # wrappers interleave: each sleeps on its own lease
            try:
                chunk = await wrapped.__anext__()
            except StopAsyncIteration:
                return
            except (asyncio.CancelledError, FaultAborted):
                raise
            except Exception:
                self._failed(active, hook)
                async for chunk in source:  # the rest passes through unfaulted
                    yield chunk
                return
            yield chunk

    def _failed(self, active: ActiveFault, hook: str) -> None:
        self._metrics.fault_errors.labels(self.ex.route, active.type).inc()
        log.exception("fault_failed", fault_id=active.id, kind=active.type, hook=hook,
                      route=self.ex.route, request_id=self.ex.request_id)
