"""TcpProxy: one tcp route — a listener, its upstream, its toxics and its open connections."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import structlog

from proxy.metrics import ProxyMetrics
from proxy.tcp.address import ListenError, bind_listener, upstream_target
from proxy.tcp.connection import Connection
from proxy.tcp.link import DOWNSTREAM, UPSTREAM, ToxicEntry

log = structlog.get_logger("brownout.tcp")

OnApplied = Callable[["TcpProxy", ToxicEntry, str], None]


class TcpProxy:
    """Accepts clients on ``listen`` and relays each to ``upstream`` (resolved per connection).

    Disabled, it listens nowhere: new connections are refused and open ones are closed.
    Toxics set with ``set_toxics`` apply at once to open connections and to new ones.
    """

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        metrics: ProxyMetrics,
        on_applied: OnApplied,
        connect_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.listen = listen  # as given until started; then the bound address
        self.upstream = upstream
        self.enabled = False
        self.toxics: list[ToxicEntry] = []  # creation order
        self._metrics = metrics
        self._on_applied = on_applied
        self._connect_timeout = connect_timeout
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[Connection] = set()
        self._ids = itertools.count(1)
        self._bytes = {d: metrics.tcp_bytes.labels(name, d) for d in (UPSTREAM, DOWNSTREAM)}

    # -- lifecycle

    async def start(self) -> None:
        if self.enabled:
            return
        sock, bound = await bind_listener(self.listen)
        try:
            self._server = await asyncio.get_running_loop().create_server(self._accept, sock=sock)
        except OSError as exc:
            sock.close()
            raise ListenError(f"listen tcp {bound}: {exc.strerror or exc}") from None
        self.listen = bound
        self.enabled = True
        log.info("tcp_proxy_started", route=self.name, listen=bound, upstream=self.upstream)

    async def stop(self) -> None:
        """Close the listener and every open connection (FIN)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.enabled:
            log.info("tcp_proxy_stopped", route=self.name)
        self.enabled = False
        for conn in list(self._conns):
            conn.close()

    async def close(self) -> None:
        """Stop, drop every socket now, and wait for the connection tasks to finish."""
        await self.stop()
        tasks = [t for conn in self._conns for t in conn.tasks()]
        for conn in list(self._conns):
            conn.abort()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports run connection_lost

    def _accept(self) -> asyncio.Protocol:
        return Connection(self, f"{self.name}-{next(self._ids)}").client

    # -- toxics

    def set_toxics(self, toxics: list[ToxicEntry]) -> None:
        self.toxics = toxics
        for conn in list(self._conns):
            conn.apply(toxics)

    def ordered_toxics(self) -> list[ToxicEntry]:
        """Upstream toxics first, then downstream, each in creation order (as Toxiproxy lists)."""
        return [t for t in self.toxics if t.direction == UPSTREAM] + [t for t in self.toxics if t.direction == DOWNSTREAM]

    def as_json(self) -> dict[str, Any]:
        """Toxiproxy's proxy object (without its accidental ``"Logger":{}`` key)."""
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled,
                "toxics": [t.as_json() for t in self.ordered_toxics()]}

    @property
    def connection_count(self) -> int:
        """Open connections (closed ones still flushing are not counted)."""
        return sum(1 for c in self._conns if not c.closed)

    @property
    def has_connections(self) -> bool:
        return bool(self._conns)

    # -- called by connections

    def track(self, conn: Connection) -> None:
        self._conns.add(conn)

    def forget(self, conn: Connection) -> None:
        self._conns.discard(conn)

    def byte_counter(self, direction: str) -> Any:
        return self._bytes[direction]

    def applied(self, entry: ToxicEntry, conn_id: str) -> None:
        self._on_applied(self, entry, conn_id)

    async def dial(self, factory: Callable[[], asyncio.Protocol]) -> asyncio.Transport | None:
        """Connect upstream off the accept path, with a timeout; None when it fails
        (the client then sees its connection closed, as with Toxiproxy)."""
        try:
            host, port = upstream_target(self.upstream)
            async with asyncio.timeout(self._connect_timeout):
                transport, _ = await asyncio.get_running_loop().create_connection(factory, host, port)
            return transport  # type: ignore[return-value]
        except (OSError, TimeoutError, ListenError) as exc:
            cause = "timeout" if isinstance(exc, TimeoutError) else "connect"
            self._metrics.upstream_errors.labels(self.name, cause).inc()
            log.warning("upstream_connect_failed", route=self.name, upstream=self.upstream, error=str(exc) or cause)
            return None
