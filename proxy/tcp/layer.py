"""TcpLayer: every tcp proxy of the process, by name, and their toxics.

Both the Toxiproxy-compatible API and the native admin API drive tcp routes through this
one object, so one kill switch serves both. Errors are ``faults.errors`` classes with
Toxiproxy's own messages (``proxy not found``, ``toxic already exists`` ...); the
Toxiproxy API turns them into its exact error bodies.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from faults.errors import BrownoutError, Conflict, InvalidInput, NotFound
from faults.toxics import Toxic, known_toxics, toxic_class
from proxy.metrics import ProxyMetrics
from proxy.tcp.address import ListenError, canonical_listen
from proxy.tcp.link import DOWNSTREAM, UPSTREAM, ToxicEntry
from proxy.tcp.relay import TcpProxy

log = structlog.get_logger("brownout.tcp")

STREAM_ERROR = "stream was invalid, can be either upstream or downstream"


@dataclass(frozen=True)
class ProxySpec:
    """One entry of a populate request."""

    name: str
    upstream: str
    listen: str = ""
    enabled: bool = True


class PopulateError(BrownoutError):
    """Populate stopped at a failing entry; ``proxies`` were processed before it."""

    def __init__(self, cause: BrownoutError, proxies: list[TcpProxy]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.proxies = proxies


def parse_stream(stream: str | None) -> str:
    """Toxiproxy's stream names, case-insensitive; missing means downstream."""
    if stream is None:
        return DOWNSTREAM
    direction = stream.lower()
    if direction not in (UPSTREAM, DOWNSTREAM):
        raise InvalidInput(STREAM_ERROR, "stream")
    return direction


class TcpLayer:
    def __init__(
        self,
        metrics: ProxyMetrics,
        seed: int | None = None,
        on_reset: Callable[[], Awaitable[Any]] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.metrics = metrics
        self.seed = seed
        self.on_reset = on_reset  # the HTTP side registers this so POST /reset clears it too
        # Told the name of every proxy created (config, Toxiproxy API, populate), so the
        # native admin API knows it as a route.
        self.on_proxy_created: Callable[[str], Any] | None = None
        self.on_proxy_deleted: Callable[[str], Any] | None = None
        self._connect_timeout = connect_timeout
        self._proxies: dict[str, TcpProxy] = {}
        self._injections: dict[tuple[str, str], int] = {}  # (proxy, toxic) → connections applied to
        self._uids = itertools.count(1)
        self._retired: list[TcpProxy] = []  # deleted, with connections still flushing
        self._lock = asyncio.Lock()  # proxy lifecycle changes await; keep them one at a time

    # -- proxies

    def proxies(self) -> list[TcpProxy]:
        return [self._proxies[name] for name in sorted(self._proxies)]

    def describe(self) -> list[dict[str, Any]]:
        """Every proxy as Toxiproxy shows it (name, listen, upstream, enabled, toxics)."""
        return [p.as_json() for p in self.proxies()]

    def get_proxy(self, name: str) -> TcpProxy:
        try:
            return self._proxies[name]
        except KeyError:
            raise NotFound("proxy not found") from None

    async def create_proxy(
        self, name: str, listen: str, upstream: str, enabled: bool = True, *, connect_timeout: float | None = None,
    ) -> TcpProxy:
        """Register a proxy; when enabled it is listening on return (``listen`` then holds
        the bound address). Conflict when the name exists, ListenError when binding fails.
        ``connect_timeout`` (seconds) bounds each upstream dial (default: the layer's)."""
        async with self._lock:
            return await self._create(name, listen, upstream, enabled, connect_timeout)

    async def _create(
        self, name: str, listen: str, upstream: str, enabled: bool, connect_timeout: float | None = None,
    ) -> TcpProxy:
        if not name:
            raise InvalidInput("missing required field: name", "name")
        if not upstream:
            raise InvalidInput("missing required field: upstream", "upstream")
        if name in self._proxies:
            raise Conflict("proxy already exists")
        proxy = TcpProxy(name, listen, upstream, metrics=self.metrics, on_applied=self._applied,
                         connect_timeout=connect_timeout or self._connect_timeout)
        if enabled:
            await proxy.start()
        self._proxies[name] = proxy
        self._gauge(proxy)
        if self.on_proxy_created is not None:
            self.on_proxy_created(name)
        return proxy

    async def update_proxy(
        self, name: str, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None,
    ) -> TcpProxy:
        """Partial update. A changed listen or upstream restarts the proxy (open connections
        are closed); the same address spelled differently does not."""
        async with self._lock:
            return await self._update(name, listen, upstream, enabled)

    async def _update(self, name: str, listen: str | None, upstream: str | None, enabled: bool | None) -> TcpProxy:
        proxy = self.get_proxy(name)
        new_listen = await canonical_listen(listen) if listen is not None else proxy.listen
        new_upstream = upstream if upstream is not None else proxy.upstream
        target = proxy.enabled if enabled is None else enabled
        if new_listen != proxy.listen or new_upstream != proxy.upstream:
            await proxy.stop()
            proxy.listen, proxy.upstream = new_listen, new_upstream
        if target and not proxy.enabled:
            await proxy.start()
        elif not target and proxy.enabled:
            await proxy.stop()
        return proxy

    async def enable(self, name: str) -> TcpProxy:
        return await self.update_proxy(name, enabled=True)

    async def disable(self, name: str) -> TcpProxy:
        """Stop listening (new clients are refused) and close every open connection."""
        return await self.update_proxy(name, enabled=False)

    async def delete_proxy(self, name: str) -> None:
        """Stop the proxy (its connections are closed) and forget it and its toxics."""
        async with self._lock:
            await self._delete(name)

    async def _delete(self, name: str) -> None:
        proxy = self.get_proxy(name)
        del self._proxies[name]
        await proxy.stop()  # closes its connections normally (FIN), as Toxiproxy does
        proxy.set_toxics([])
        self._retired = [p for p in self._retired if p.has_connections] + [proxy]
        self.metrics.active_faults.labels(name).set(0)
        if self.on_proxy_deleted is not None:
            self.on_proxy_deleted(name)

    async def populate(self, specs: list[ProxySpec]) -> list[TcpProxy]:
        """Create or replace proxies in order (Toxiproxy's /populate). An entry equal to an
        existing proxy (same upstream, same resolved listen) leaves it untouched."""
        done: list[TcpProxy] = []
        async with self._lock:
            for spec in specs:
                await self._populate_one(spec, done)
        return done

    async def _populate_one(self, spec: ProxySpec, done: list[TcpProxy]) -> None:
        try:
            existing = self._proxies.get(spec.name)
            if existing is not None:
                if existing.upstream == spec.upstream and existing.listen == await _canonical_or_none(spec.listen):
                    done.append(existing)
                    return
                await self._delete(spec.name)
            done.append(await self._create(spec.name, spec.listen, spec.upstream, spec.enabled))
        except BrownoutError as exc:
            raise PopulateError(exc, done) from None

    # -- toxics

    def toxics(self, proxy_name: str) -> list[ToxicEntry]:
        return self.get_proxy(proxy_name).ordered_toxics()

    def get_toxic(self, proxy_name: str, toxic_name: str) -> ToxicEntry:
        for entry in self.get_proxy(proxy_name).toxics:
            if entry.name == toxic_name:
                return entry
        raise NotFound("toxic not found")

    async def add_toxic(
        self,
        proxy_name: str,
        *,
        type: str,
        attributes: Mapping[str, Any] | None = None,
        stream: str | None = "downstream",
        toxicity: float | None = 1.0,
        name: str | None = None,
    ) -> ToxicEntry:
        """Add a toxic; it applies at once to open connections. Checks run in Toxiproxy's
        order: stream, type, name conflict, attributes."""
        proxy = self.get_proxy(proxy_name)
        direction = parse_stream(stream)
        cls = toxic_class(type)
        shown_stream = stream if stream is not None else DOWNSTREAM
        toxic_name = name or f"{type}_{shown_stream}"
        if any(e.name == toxic_name for e in proxy.toxics):
            raise Conflict("toxic already exists")
        toxic = cls.from_attributes(attributes)
        entry = ToxicEntry(toxic_name, shown_stream, direction, _toxicity(toxicity, 1.0), toxic,
                           self._rng(proxy_name, toxic_name), next(self._uids))
        self._injections.pop((proxy_name, toxic_name), None)
        proxy.set_toxics([*proxy.toxics, entry])
        self._gauge(proxy)
        log.info("toxic_added", route=proxy_name, fault_id=toxic_name, kind=type, stream=shown_stream,
                 toxicity=entry.toxicity, attributes=toxic.attributes())
        return entry

    async def update_toxic(
        self, proxy_name: str, toxic_name: str, *, attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> ToxicEntry:
        """Partial update (given attributes overwrite, others keep their values); it applies
        live, and the toxicity is drawn again for every open connection."""
        proxy = self.get_proxy(proxy_name)
        old = self.get_toxic(proxy_name, toxic_name)
        toxic: Toxic = type(old.toxic).from_attributes(attributes, base=old.toxic)
        entry = ToxicEntry(old.name, old.stream, old.direction, _toxicity(toxicity, old.toxicity), toxic, old.rng,
                           old.uid)
        proxy.set_toxics([entry if e is old else e for e in proxy.toxics])
        log.info("toxic_updated", route=proxy_name, fault_id=toxic_name, kind=entry.type,
                 toxicity=entry.toxicity, attributes=toxic.attributes())
        return entry

    async def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        proxy = self.get_proxy(proxy_name)
        old = self.get_toxic(proxy_name, toxic_name)
        proxy.set_toxics([e for e in proxy.toxics if e is not old])
        self._gauge(proxy)
        log.info("toxic_removed", route=proxy_name, fault_id=toxic_name, kind=old.type)

    # -- the native admin API's view: toxics as leased faults

    def toxic_types(self) -> list[str]:
        return known_toxics()

    async def add_leased_toxic(self, route: str, toxic_type: str, params: Mapping[str, Any] | None,
                               name: str) -> dict[str, Any]:
        """Add a toxic named after a native fault id. ``params`` holds the toxic's attributes
        (Toxiproxy's units) plus optional ``stream`` and ``toxicity``; unknown keys are named
        errors. Returns the params as they now stand (every attribute shown)."""
        params = dict(params or {})
        stream = params.pop("stream", DOWNSTREAM)
        toxicity = params.pop("toxicity", 1.0)
        known = toxic_class(toxic_type).from_attributes(None).attributes()
        for key in params:
            if key not in known:
                raise InvalidInput(f"unknown key; {toxic_type} takes {', '.join(sorted(known)) or 'none'}, "
                                   "stream, toxicity", f"params.{key}")
        if not isinstance(stream, str):
            raise InvalidInput(STREAM_ERROR, "params.stream")
        try:
            entry = await self.add_toxic(route, type=toxic_type, attributes=params, stream=stream,
                                         toxicity=toxicity, name=name)
        except InvalidInput as exc:
            field = exc.field or ""
            raise InvalidInput(exc.message, "params." + field.removeprefix("attributes.")) from None
        return {**entry.toxic.attributes(), "stream": entry.stream, "toxicity": entry.toxicity}

    async def remove_leased_toxic(self, route: str, name: str) -> None:
        """Remove a leased toxic; already gone (reset, deleted proxy) is fine."""
        try:
            await self.remove_toxic(route, name)
        except NotFound:
            pass

    async def remove_all_toxics(self) -> int:
        """Kill switch for tcp routes: remove every toxic everywhere; return how many."""
        removed = 0
        for proxy in self.proxies():
            removed += len(proxy.toxics)
            if proxy.toxics:
                proxy.set_toxics([])
                self._gauge(proxy)
        return removed

    async def reset(self, *, notify: bool = True) -> None:
        """Toxiproxy's POST /reset: re-enable every proxy and remove every toxic, then (when
        ``notify``) let the HTTP side clear its faults. Stops at a proxy that cannot listen again."""
        try:
            async with self._lock:
                for proxy in self.proxies():
                    if not proxy.enabled:
                        await proxy.start()
                    proxy.set_toxics([])
                    self._gauge(proxy)
        finally:
            if notify and self.on_reset is not None:
                await self.on_reset()

    async def close(self) -> None:
        """Stop every proxy and drop every connection (process shutdown)."""
        for proxy in [*self._proxies.values(), *self._retired]:
            await proxy.close()
        self._retired = []

    # -- internals

    def _rng(self, proxy_name: str, toxic_name: str) -> random.Random:
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}/{proxy_name}/{toxic_name}")

    def _gauge(self, proxy: TcpProxy) -> None:
        self.metrics.active_faults.labels(proxy.name).set(len(proxy.toxics))

    def injection_count(self, proxy_name: str, toxic_name: str) -> int:
        """How many connections the toxic has applied to since it was added."""
        return self._injections.get((proxy_name, toxic_name), 0)

    def _applied(self, proxy: TcpProxy, entry: ToxicEntry, conn_id: str) -> None:
        key = (proxy.name, entry.name)
        self._injections[key] = self._injections.get(key, 0) + 1
        self.metrics.faults_injected.labels(proxy.name, entry.type).inc()
        log.info("fault_injected", fault_id=entry.name, kind=entry.type, route=proxy.name,
                 connection_id=conn_id, stream=entry.stream)


def _toxicity(value: float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput("toxicity must be a number", "toxicity")
    return float(value)


async def _canonical_or_none(listen: str) -> str | None:
    try:
        return await canonical_listen(listen)
    except ListenError:
        return None
