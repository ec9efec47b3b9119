"""One proxy process: its routes, the admin API, the Toxiproxy API, leases and draining."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import structlog
from aiohttp import web

from faults.errors import InvalidInput
from proxy.addresses import parse_host_port
from proxy.admin import make_admin_app
from proxy.config import ProxyConfig
from proxy.fault_requests import FaultRequest, parse_body
from proxy.fault_service import FaultService
from proxy.http_route import HttpRoute
from proxy.leases import FaultStore
from proxy.metrics import ProxyMetrics
from proxy.recording.service import RecordingService
from proxy.tracing import install_tracing

log = structlog.get_logger("brownout.proxy")


class ProxyServer:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.metrics = ProxyMetrics()
        self.store = FaultStore(seed=config.seed)
        http_routes = {r.name for r in config.routes if r.kind == "http"}
        # tcp routes' gauge is kept by the tcp layer, which also sees toxics added through its own API.
        self.store.on_change(lambda route: route in http_routes
                             and self.metrics.active_faults.labels(route).set(self.store.count_for(route)))
        self.metrics.watch_fault_states(lambda: [(f.route, f.id, f.state) for f in self.store.all() if f.state is not None])
        self.tcp: Any = None
        self.http_routes = [
            HttpRoute(r, self.store, self.metrics, fault_header=config.fault_header, max_body=config.max_request_body)
            for r in config.routes if r.kind == "http"
        ]
        self.tracing = install_tracing(config, self.http_routes, self.metrics)  # None: tracing is off
        self.service = FaultService(config, self.store)
        self.recordings = RecordingService(config, self.metrics.registry, {r.name: r for r in self.http_routes})
        self._runners: list[web.AppRunner] = []
        self.admin_address: tuple[str, int] | None = None
        self.toxiproxy_address: tuple[str, int] | None = None

    async def start(self) -> None:
        started: list[HttpRoute] = []
        try:
            for route in self.http_routes:
                await route.start()
                started.append(route)
            await self._start_tcp()
            await self._add_static_faults()
            await self.recordings.start()
            admin = make_admin_app(self.service, self.metrics, self.describe_routes, self.config.admin.token,
                                   self.recordings)
            self.admin_address = await self._serve(admin, self.config.admin.address.host, self.config.admin.address.port)
        except BaseException:
            for route in started:
                route.stop_accepting()
                await route.drain(0)
            await self.recordings.close()
            raise
        self.store.start_sweeper()
        log.info("proxy_ready", admin=f"{self.admin_address[0]}:{self.admin_address[1]}",
                 routes={r.name: f"{r.bound[0]}:{r.bound[1]}" for r in self.http_routes if r.bound})

    async def _start_tcp(self) -> None:
        tcp_routes = [r for r in self.config.routes if r.kind == "tcp"]
        if not tcp_routes and self.config.toxiproxy_api is None:
            return
        from proxy.tcp import TcpLayer, make_toxiproxy_app

        self.tcp = TcpLayer(metrics=self.metrics, seed=self.config.seed)
        self.service.tcp = self.tcp
        for route in tcp_routes:
            await self.tcp.create_proxy(route.name, route.listen, route.upstream, enabled=True,
                                        connect_timeout=route.connect_timeout)
        self.tcp.on_reset = lambda: self.service.clear(tcp_too=False)  # Toxiproxy's POST /reset clears HTTP faults too
        self.tcp.on_proxy_created = lambda name: self.service.add_route(name, "tcp")
        api = self.config.toxiproxy_api
        if api is not None:
            address = parse_host_port(api.listen)
            self.toxiproxy_address = await self._serve(make_toxiproxy_app(self.tcp), address.host, address.port)

    async def _add_static_faults(self) -> None:
        for index, body in enumerate(self.config.faults):
            try:
                await self.service.add(parse_body(FaultRequest, body), static=True)
            except InvalidInput as exc:
                exc.field = f"faults[{index}].{exc.field}" if exc.field else f"faults[{index}]"
                raise

    async def _serve(self, app: web.Application, host: str, port: int) -> tuple[str, int]:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        server = site._server
        return server.sockets[0].getsockname()[:2] if server and server.sockets else (host, port)  # type: ignore[union-attr]

    def describe_routes(self) -> list[dict[str, Any]]:
        routes = [
            {"name": r.name, "kind": "http", "listen": r.config.listen, "upstream": r.config.upstream,
             "state": "up", "active_faults": self.store.count_for(r.name)}
            for r in self.http_routes
        ]
        if self.tcp is not None:
            for proxy in self.tcp.describe():
                routes.append({"name": proxy["name"], "kind": "tcp", "listen": proxy["listen"], "upstream": proxy["upstream"],
                               "state": "up" if proxy["enabled"] else "disabled",
                               "active_faults": len(proxy["toxics"])})
        return routes

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, drain in-flight requests within ``grace``, remove every fault."""
        grace = self.config.drain_grace if grace is None else grace
        for route in self.http_routes:
            route.stop_accepting()
        await asyncio.gather(*(route.drain(grace) for route in self.http_routes))
        await self.recordings.close()  # after draining: the exchanges in flight are recorded too
        if self.tracing is not None:
            await self.tracing.close()
        await self.store.close()
        if self.tcp is not None:
            await self.tcp.close()
        for runner in self._runners:
            await runner.cleanup()


async def serve_forever(config: ProxyConfig) -> None:
    """Run until SIGTERM/SIGINT, then drain within ``drain_grace`` and return."""
    server = ProxyServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("proxy_draining", grace_s=config.drain_grace)
    await server.stop()
    log.info("proxy_stopped")
