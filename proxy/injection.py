"""Running the faults selected for one exchange, each through its own view, each call isolated.

An exception inside a fault is logged and counted, and the exchange carries on without that
fault; ``CancelledError`` and ``AbortExchange`` always propagate (a ``Reset`` a hook returns
becomes an ``AbortExchange``, so the route handles every abort in one place). When the exchange
ends, ``finish`` runs the ``on_exchange_end`` hooks and records what each fault reported: logged
as ``fault_injected`` and counted, and, when the route has observers, made into one ``FaultEffect``
handed to them (a fault applied to every request pays for no record nobody reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from types import MappingProxyType
from typing import Any

import structlog

from faults import PROCEED, AbortExchange, BodyEdit, Exchange, ExchangeData, Hook, Outcome, Proceed, Reset
from proxy.leases import ActiveFault
from proxy.metrics import ProxyMetrics
from proxy.observers import ExchangeObserver, FaultEffect

log = structlog.get_logger("brownout.proxy")


class Injection:
    """The faults that apply to one exchange, the data they share and each one's view of it."""

    __slots__ = ("faults", "views", "data", "_metrics")

    def __init__(self, faults: tuple[ActiveFault, ...], data: ExchangeData, metrics: ProxyMetrics) -> None:
        self.faults = faults
        self.data = data
        self.views = tuple([active.view(data) for active in faults])
        self._metrics = metrics

    @property
    def ids(self) -> str:
        return ",".join(f.id for f in self.faults)

    def uses(self, hook: Hook) -> bool:
        for active in self.faults:  # (a fault's hooks may change mid-exchange, by a PATCH: asked each time)
            if hook in active.hooks:
                return True
        return False

    async def run(self, hook: Hook) -> Outcome:
        """Call ``hook`` on each fault in order; the first non-``Proceed`` outcome wins (a ``Reset`` is raised)."""
        for active, view in zip(self.faults, self.views, strict=True):
            if hook not in active.hooks or active.removed:
                continue
            view.hook = hook
            try:
                outcome = await getattr(active.fault, hook)(view)
            except (asyncio.CancelledError, AbortExchange):
                raise
            except Exception:
                self._failed(active, hook)
                continue
            if isinstance(outcome, Reset):
                raise AbortExchange(outcome)
            if not isinstance(outcome, Proceed):
                return outcome
        return PROCEED

    def edit(self, hook: Hook) -> BodyEdit:
        """What the body wrappers of ``hook`` do to the bytes, together: the strongest edit wins."""
        edits = []
        for active, view in zip(self.faults, self.views, strict=True):
            if hook in active.hooks:
                fault: Any = active.fault
                try:
                    edits.append(fault.request_edit(view) if hook == Hook.WRAP_REQUEST_BODY else fault.response_edit(view))
                except Exception:
                    self._failed(active, hook)
        return BodyEdit.strongest(edits)

    def wrap(self, hook: Hook, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        for active, view in zip(self.faults, self.views, strict=True):
            if hook in active.hooks:
                chunks = self._guarded(active, view, hook, chunks)
        return chunks

    async def _guarded(self, active: ActiveFault, view: Exchange, hook: Hook,
                       source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        view.hook = hook
        try:
            wrapped: Any = getattr(active.fault, hook)(view, source)
        except Exception:
            self._failed(active, hook)
            wrapped = source
        while True:
            try:
                chunk = await wrapped.__anext__()
            except StopAsyncIteration:
                return
            except (asyncio.CancelledError, AbortExchange):
                raise
            except Exception:
                self._failed(active, hook)
                async for chunk in source:  # the rest passes through unfaulted
                    yield chunk
                return
            yield chunk

    def finish(self, status: int, observers: Sequence[ExchangeObserver]) -> tuple[FaultEffect, ...]:
        """The exchange ended with ``status``: run ``on_exchange_end`` once per fault, then record the effects
        (logged and counted; made into ``FaultEffect`` records, returned, only for the ``observers``)."""
        self.data.status = status
        for active, view in zip(self.faults, self.views, strict=True):
            if Hook.ON_EXCHANGE_END in active.hooks:
                view.hook = Hook.ON_EXCHANGE_END
                try:
                    active.fault.on_exchange_end(view)  # type: ignore[union-attr]
                except Exception:
                    self._failed(active, Hook.ON_EXCHANGE_END)
        for active, view in zip(self.faults, self.views, strict=True):
            record(active, view, self._metrics)
        if not observers:
            return ()
        effects = tuple([effect(active, view) for active, view in zip(self.faults, self.views, strict=True)])
        for one in effects:
            for observer in observers:
                try:
                    observer.fault_effect(one)
                except Exception:
                    log.exception("observer_failed", route=one.route, observer=type(observer).__name__)
        return effects

    def _failed(self, active: ActiveFault, hook: Hook) -> None:
        self._metrics.fault_errors.labels(self.data.route, active.type).inc()
        log.exception("fault_failed", fault_id=active.id, kind=active.type, hook=str(hook),
                      route=self.data.route, request_id=self.data.request_id)


def record(active: ActiveFault, view: Exchange, metrics: ProxyMetrics) -> None:
    """One fault's effect on one exchange (or connection), logged and counted."""
    data, details = view.data, view.details
    metrics.fault_injected(data.route, active.type).inc()
    if details:
        rejected = details.get("rejected")
        if isinstance(rejected, str):  # a capacity fault refused the request (rate_limit, concurrency_limit)
            metrics.fault_rejections.labels(data.route, active.type, rejected).inc()
    log.info("fault_injected", fault_id=active.id, kind=active.type, route=data.route, request_id=data.request_id,
             hook=str(view.effect_hook) if view.effect_hook else None, at_s=round(view.effect_at, 6),
             details=details or {})  # (rendered here and now: no copy needed)


def effect(active: ActiveFault, view: Exchange) -> FaultEffect:
    """One fault's record of one exchange (or connection), for the observers."""
    data = view.data
    return FaultEffect(
        fault_id=active.id, kind=active.type, route=data.route, request_id=data.request_id,
        hook=view.effect_hook, at_s=round(view.effect_at, 6),
        details=MappingProxyType(dict(view.details) if view.details else {}),
    )
