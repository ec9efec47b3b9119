"""The demo stack behind Brownout proxies, as ``brownout demo`` runs it.

Every hop goes through a proxy: clients → main proxy's model-api route → model API →
main proxy's feature-store and cache (tcp) routes, and each GPU worker replica's own
sidecar proxy (one ``gpu-worker`` route and its own admin API) → the backends. The model API
spreads scoring over the replicas and fails over between them (``retry.py``).

The environment variables that the experiment library reads (``${BROWNOUT_TARGET:-...}``
and friends, see ``GameDay.env``) are set from the ports actually used, so every library
file runs against this stack unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from brownout.library import packaged_dir
from faults.errors import InvalidInput
from proxy.config import ProxyConfig
from proxy.server import ProxyServer

from .model_api import ModelApiSettings
from .processes import ServiceProcess, proxy_process
from .retry import DEFAULT_RETRY, RetryPolicy
from .stack import Backends, enter_all, start_backends, start_model_api
from .web import free_port

RETRY_ENV = "BROWNOUT_DEMO_RETRY"  # e.g. "immediate:3": the model API's retry policy in `brownout demo`
GPU_ROUTE = "gpu-worker"
_BIND_TRIES = 3  # the main proxy's ports, picked free and then bound: another process may take one between


@dataclass(frozen=True)
class Sidecar:
    """One GPU worker replica's own proxy: a ``gpu-worker`` route and an admin API."""

    replica: int
    admin_url: str
    route: str                              # host:port of its gpu-worker route (what the model API calls)
    process: ServiceProcess | None = None   # None when it runs in-process


@dataclass(frozen=True)
class GameDay:
    proxy: ProxyServer
    backends: Backends
    model_api_url: str
    routes: dict[str, str]  # the main proxy's routes: name → the address clients use
    admin_url: str
    sidecars: tuple[Sidecar, ...] = ()
    retry: RetryPolicy = DEFAULT_RETRY
    pidfiles: tuple[Path, ...] = ()  # the services' processes (their CPU is the cost of serving)

    @property
    def target(self) -> str:
        return f"http://{self.routes['model-api']}"

    def env(self) -> dict[str, str]:
        """What the experiment library's ``${VAR:-default}`` read.

        ``BROWNOUT_ADMIN`` is the main proxy; ``BROWNOUT_GPU_ADMIN_<i>`` replica i's sidecar;
        ``BROWNOUT_GPU_WORKER_<i>_PIDFILE`` and ``_RESTART`` kill and bring back replica i
        (``BROWNOUT_GPU_WORKER_PIDFILE`` and ``_RESTART``, unnumbered, are replica 0).
        """
        env = {"BROWNOUT_TARGET": self.target, "BROWNOUT_ADMIN": self.admin_url}
        for sidecar in self.sidecars:
            env[f"BROWNOUT_GPU_ADMIN_{sidecar.replica}"] = sidecar.admin_url
        for i, worker in enumerate(self.backends.worker_processes):
            if worker.pidfile is None:
                continue
            # A restart command must return once the service is started: run it in the background.
            restart = f"{worker.restart_command} >/dev/null 2>&1 &"
            env[f"BROWNOUT_GPU_WORKER_{i}_PIDFILE"] = str(worker.pidfile)
            env[f"BROWNOUT_GPU_WORKER_{i}_RESTART"] = restart
            if i == 0:
                env["BROWNOUT_GPU_WORKER_PIDFILE"], env["BROWNOUT_GPU_WORKER_RESTART"] = str(worker.pidfile), restart
        return env


def retry_from_env(environ: dict[str, str] | None = None) -> RetryPolicy:
    """The policy ``BROWNOUT_DEMO_RETRY`` names (``none``, ``immediate[:N]``, ``backoff[:N]``), else the default."""
    spec = (os.environ if environ is None else environ).get(RETRY_ENV, "").strip()
    if not spec:
        return DEFAULT_RETRY
    try:
        return RetryPolicy.parse(spec)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, RETRY_ENV) from None


def requested_retry(experiment: Path) -> RetryPolicy | None:
    """The policy an experiment asks the demo for (``demo: {retry: SPEC}``), read before the stack
    starts; None when ``BROWNOUT_DEMO_RETRY`` is set (it wins) or the file asks for none."""
    if os.environ.get(RETRY_ENV, "").strip():
        return None
    try:
        doc = yaml.safe_load(experiment.read_text())
    except (OSError, yaml.YAMLError):
        return None  # the experiment's own loading says what is wrong with it
    demo = doc.get("demo") if isinstance(doc, dict) else None
    spec = demo.get("retry") if isinstance(demo, dict) else None
    if not isinstance(spec, str):
        return None
    try:
        return RetryPolicy.parse(spec)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, "demo.retry", source=str(experiment)) from None


async def _warm_up(day: GameDay, requests: int = 40) -> None:
    """A cold stack is slow for its first requests (pools, caches, imports): warm it before judging it."""
    lines = (packaged_dir() / "data" / "transactions.jsonl").read_text().splitlines()
    corpus = [json.loads(line)["body"] for line in lines[:requests]]
    async with aiohttp.ClientSession() as session:
        for body in corpus:
            async with session.post(f"{day.target}/predict", json=body) as response:
                await response.read()


def _proxy_config(host: str, routes: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"admin": {"listen": f"{host}:{free_port(host)}"}, "routes": routes, "fault_header": True,
            "fault_ttl": {"default": "5m", "max": "1h"}, **extra}


@asynccontextmanager
async def _in_process(config: dict[str, Any]) -> AsyncIterator[ProxyServer]:
    proxy = ProxyServer(ProxyConfig.model_validate(config))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop(grace=1.0)


async def _main_proxy(stack: AsyncExitStack, host: str, backends: Backends, api_port: int,
                      record: dict[str, Any]) -> tuple[ProxyServer, list[dict[str, str]]]:
    """The in-process proxy in front of the model API, the feature store and the cache. Its ports are
    picked free, then bound: another process may take one in between, so a taken port means
    picking them again (``_BIND_TRIES`` times in all)."""
    for _ in range(_BIND_TRIES - 1):
        try:
            return await _start_main_proxy(stack, host, backends, api_port, record)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    return await _start_main_proxy(stack, host, backends, api_port, record)


async def _start_main_proxy(stack: AsyncExitStack, host: str, backends: Backends, api_port: int,
                            record: dict[str, Any]) -> tuple[ProxyServer, list[dict[str, str]]]:
    routes = [
        {"name": "model-api", "kind": "http", "listen": f"{host}:{free_port(host)}", "upstream": f"http://{host}:{api_port}"},
        {"name": "feature-store", "kind": "http", "listen": f"{host}:{free_port(host)}", "upstream": backends.feature_store_url},
    ]
    if backends.redis_address is not None:
        routes.append({"name": "cache", "kind": "tcp", "listen": f"{host}:{free_port(host)}", "upstream": backends.redis_address})
    config = _proxy_config(host, routes, toxiproxy_api={"listen": f"{host}:{free_port(host)}"}, **record)
    return await stack.enter_async_context(_in_process(config)), routes


async def _sidecars(stack: AsyncExitStack, backends: Backends, *, host: str, processes: bool,
                    run_dir: Path) -> tuple[Sidecar, ...]:
    """One proxy per GPU worker replica, each with one gpu-worker route: real processes or in-process."""
    configs = [_proxy_config(host, [{"name": GPU_ROUTE, "kind": "http", "listen": f"{host}:{free_port(host)}",
                                     "upstream": url}], drain_grace=1.0)
               for url in backends.worker_urls]
    if processes:
        procs = await enter_all(stack, [proxy_process(f"gpu-sidecar-{i}", c, run_dir=run_dir)
                                        for i, c in enumerate(configs)])
        return tuple(Sidecar(i, p.url, c["routes"][0]["listen"], p) for i, (p, c) in enumerate(zip(procs, configs)))
    servers = [await stack.enter_async_context(_in_process(c)) for c in configs]
    out = []
    for i, (server, c) in enumerate(zip(servers, configs)):
        admin = server.admin_address
        assert admin is not None
        out.append(Sidecar(i, f"http://{admin[0]}:{admin[1]}", c["routes"][0]["listen"]))
    return tuple(out)


@asynccontextmanager
async def game_day(cache_dir: Path | None = None, *, host: str = "127.0.0.1", processes: bool = True,
                   feature_timeout_ms: float = 100.0, replicas: int = 2,
                   retry: RetryPolicy | None = None, record_dir: Path | None = None) -> AsyncIterator[GameDay]:
    """Start backends, the main proxy and one sidecar per GPU worker replica, then the model API wired through them.

    ``processes``: services and sidecars run as real processes (the main proxy stays in-process).
    ``retry``: the model API's policy; default ``BROWNOUT_DEMO_RETRY`` or ``DEFAULT_RETRY``.
    ``record_dir``: the main proxy records there (``brownout demo --record``).
    """
    retry = retry if retry is not None else retry_from_env()
    async with AsyncExitStack() as stack:
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brownout-demo-")))
        backends = await stack.enter_async_context(
            start_backends(cache_dir, processes=processes, host=host, replicas=replicas, run_dir=run_dir))
        sidecars = await _sidecars(stack, backends, host=host, processes=processes, run_dir=run_dir)
        api_port = free_port(host)
        record = {"record": {"dir": str(record_dir)}} if record_dir is not None else {}
        proxy, routes = await _main_proxy(stack, host, backends, api_port, record)
        by_name = {r["name"]: r["listen"] for r in routes}
        settings = ModelApiSettings(
            feature_store_url=f"http://{by_name['feature-store']}",
            worker_url=tuple(f"http://{s.route}" for s in sidecars),
            redis_url=f"redis://{by_name['cache']}/0" if "cache" in by_name else None,
            feature_timeout_ms=feature_timeout_ms, retry=retry,
        )
        api = await stack.enter_async_context(
            start_model_api(backends.bundle, settings, processes=processes, host=host, port=api_port, run_dir=run_dir))
        admin = proxy.admin_address
        assert admin is not None
        procs = [*backends.processes.values(), *([api.process] if api.process else [])]
        day = GameDay(proxy, backends, api.url, by_name, f"http://{admin[0]}:{admin[1]}", sidecars, retry,
                      tuple(p.pidfile for p in procs if p.pidfile is not None))
        await _warm_up(day)
        yield day
