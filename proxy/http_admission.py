"""An http route's client connections outside their requests: admission and housekeeping.

A connection is admitted before its first request is read: beyond ``max_connections`` it gets
a 503 and is closed; otherwise the route's connection-phase faults run on it (their own tuple,
so requests pay nothing for them). The sweep closes keep-alive connections idle too long and
answers a request head that has not completed within ``header_timeout`` with a 408.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable
from typing import Any

import structlog

from faults import AbortExchange, ExchangeData, Hook, Reset, Respond
from proxy import h1
from proxy.config import RouteConfig
from proxy.h1_server import ClientConnection
from proxy.injection import Injection
from proxy.leases import ActiveFault, FaultStore
from proxy.metrics import ProxyMetrics
from proxy.observers import ExchangeObserver

log = structlog.get_logger("brownout.proxy")

RESET_STATUS = 499  # counted status of an exchange answered by closing the connection
_CLIENT_IDLE_S = 75.0  # keep-alive client connections idle this long are closed
_SWEEP_S = 5.0  # how often idle connections and stalled heads are looked for (at most)
_REFUSAL_LOG_S = 1.0  # refused connections are logged at most this often (with a count)


async def abort(client: ClientConnection, reset: Reset) -> None:
    """The one way a fault's abort is carried out: flush what was written, then RST or FIN."""
    if reset.graceful:
        client.abort(rst=False)  # a close sends what is buffered, then the FIN
    else:
        await client.reset_after_flush()


def json_response(status: int, body: dict[str, Any]) -> bytes:
    """A complete response that closes the connection (an answer with no request to frame it)."""
    raw = json.dumps(body).encode()
    head = h1.response_head(status, h1.reason(status), [
        (b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(raw)), (b"Connection", b"close")])
    return bytes(head) + raw


class ConnectionGate:
    def __init__(self, config: RouteConfig, store: FaultStore, metrics: ProxyMetrics,
                 connections: set[ClientConnection], observers: list[ExchangeObserver], *, fault_header: bool,
                 id_prefix: str) -> None:
        self.name = config.name
        self._config, self._store, self._metrics = config, store, metrics
        self._connections, self._observers = connections, observers
        self._fault_header = fault_header
        self._ids = itertools.count(1)
        self._id_prefix = id_prefix
        self._refused = 0  # connections refused over max_connections since the last log event
        self._refusal_logged = 0.0

    # -- admission

    def accept(self, client: ClientConnection) -> Awaitable[None] | None:
        if len(self._connections) > self._config.max_connections:
            self._refuse_over_limit(client)
            return None
        faults = self._store.for_connections(self.name)
        return self._connection_faults(client, faults) if faults else None

    def _refuse_over_limit(self, client: ClientConnection) -> None:
        limit = self._config.max_connections
        client.refuse(json_response(503, {"error": f"route {self.name!r} is at its limit of {limit} open connections",
                                          "route": self.name, "max_connections": limit}))
        self._refused += 1
        now = time.monotonic()
        if now - self._refusal_logged >= _REFUSAL_LOG_S:
            log.warning("connections_refused", route=self.name, max_connections=limit, refused=self._refused)
            self._refused, self._refusal_logged = 0, now

    async def _connection_faults(self, client: ClientConnection, faults: tuple[ActiveFault, ...]) -> None:
        selected = tuple(f for f in faults if f.decide_connection())
        if not selected:
            return
        data = ExchangeData(route=self.name, request_id=f"{self._id_prefix}-c{next(self._ids)}", method="", path="",
                            client=client.client, now=time.monotonic)
        injection = Injection(selected, data, self._metrics)
        status = 0  # (the connection goes on to be served: its requests are counted as they come)
        try:
            outcome = await injection.run(Hook.ON_CONNECTION)
            if isinstance(outcome, Respond):
                headers = [(k.encode("latin-1"), h1.encode_value(v)) for k, v in outcome.headers
                           if k.lower().encode("latin-1") not in h1.FRAMING]
                headers += [(b"Content-Length", b"%d" % len(outcome.body)), (b"Connection", b"close")]
                if self._fault_header:
                    headers.append((b"x-brownout-fault", injection.ids.encode()))
                client.refuse(h1.response_head(outcome.status, h1.reason(outcome.status), headers) + outcome.body)
                status = outcome.status
        except AbortExchange as aborted:
            status = RESET_STATUS
            await abort(client, aborted.reset)
        finally:
            injection.finish(status, self._observers)

    # -- housekeeping

    @property
    def sweep_interval(self) -> float:
        return min(_SWEEP_S, self._config.header_timeout / 4)

    def sweep(self) -> None:
        """Close idle keep-alive connections; answer stalled request heads with a 408."""
        header_timeout = self._config.header_timeout
        idle_cutoff = time.monotonic() - _CLIENT_IDLE_S
        head_cutoff = asyncio.get_running_loop().time() - header_timeout
        for connection in [c for c in self._connections if not c.busy]:
            if connection.head_since is not None and connection.head_since < head_cutoff:
                connection.refuse(json_response(408, {
                    "error": f"request head not complete within {header_timeout:g}s", "route": self.name}))
            elif connection.idle_since < idle_cutoff:
                connection.close()
