"""The demo stack behind a Brownout proxy, as ``brownout demo`` runs it.

Every hop goes through the proxy: clients → model-api route → model API → feature-store,
gpu-worker and cache (tcp) routes → the backends. The environment variables that the
experiment library reads (``${BROWNOUT_TARGET:-...}`` and friends) are set from the ports
actually used, so every library file runs against this stack unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from proxy.config import ProxyConfig
from proxy.server import ProxyServer

from .model_api import ModelApiSettings
from .stack import Backends, start_backends, start_model_api
from .web import free_port


DATA = Path(__file__).resolve().parents[2] / "experiments" / "data"


@dataclass(frozen=True)
class GameDay:
    proxy: ProxyServer
    backends: Backends
    model_api_url: str
    routes: dict[str, str]  # route name → the address clients use
    admin_url: str

    @property
    def target(self) -> str:
        return f"http://{self.routes['model-api']}"

    def env(self) -> dict[str, str]:
        """What the experiment library's ``${VAR:-default}`` read."""
        env = {"BROWNOUT_TARGET": self.target, "BROWNOUT_ADMIN": self.admin_url}
        worker = self.backends.processes.get("gpu-worker")
        if worker is not None and worker.pidfile is not None:
            env["BROWNOUT_GPU_WORKER_PIDFILE"] = str(worker.pidfile)
            # A restart command must return once the service is started: run it in the background.
            env["BROWNOUT_GPU_WORKER_RESTART"] = f"{worker.restart_command} >/dev/null 2>&1 &"
        return env


async def _warm_up(day: GameDay, requests: int = 40) -> None:
    """A cold stack is slow for its first requests (pools, caches, imports): warm it before judging it."""
    corpus = [json.loads(line)["body"] for line in (DATA / "transactions.jsonl").read_text().splitlines()[:requests]]
    async with aiohttp.ClientSession() as session:
        for body in corpus:
            async with session.post(f"{day.target}/predict", json=body) as response:
                await response.read()


@asynccontextmanager
async def game_day(cache_dir: Path | None = None, *, host: str = "127.0.0.1", processes: bool = True,
                   feature_timeout_ms: float = 100.0, record_dir: Path | None = None) -> AsyncIterator[GameDay]:
    """Start backends, the proxy in front of every hop, then the model API wired through it."""
    async with start_backends(cache_dir, processes=processes, host=host) as backends:
        api_port = free_port(host)
        routes = [
            {"name": "model-api", "kind": "http", "listen": f"{host}:{free_port(host)}", "upstream": f"http://{host}:{api_port}"},
            {"name": "feature-store", "kind": "http", "listen": f"{host}:{free_port(host)}", "upstream": backends.feature_store_url},
            {"name": "gpu-worker", "kind": "http", "listen": f"{host}:{free_port(host)}", "upstream": backends.worker_url},
        ]
        if backends.redis_address is not None:
            routes.append({"name": "cache", "kind": "tcp", "listen": f"{host}:{free_port(host)}", "upstream": backends.redis_address})
        config = ProxyConfig.model_validate({
            "admin": {"listen": f"{host}:{free_port(host)}"},
            "toxiproxy_api": {"listen": f"{host}:{free_port(host)}"},
            "routes": routes, "fault_header": True, "fault_ttl": {"default": "5m", "max": "1h"},
            **({"record": {"dir": str(record_dir)}} if record_dir is not None else {}),  # brownout demo --record
        })
        proxy = ProxyServer(config)
        await proxy.start()
        try:
            by_name = {r["name"]: r["listen"] for r in routes}
            settings = ModelApiSettings(
                feature_store_url=f"http://{by_name['feature-store']}", worker_url=f"http://{by_name['gpu-worker']}",
                redis_url=f"redis://{by_name['cache']}/0" if "cache" in by_name else None,
                feature_timeout_ms=feature_timeout_ms,
            )
            async with start_model_api(backends.bundle, settings, processes=processes, host=host, port=api_port) as api:
                admin = proxy.admin_address
                assert admin is not None
                day = GameDay(proxy, backends, api.url, by_name, f"http://{admin[0]}:{admin[1]}")
                await _warm_up(day)
                yield day
        finally:
            await proxy.stop(grace=1.0)
