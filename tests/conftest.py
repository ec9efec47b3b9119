"""Shared test helpers: free ports, real upstream servers, and the proxy started as users start it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from brownout.demo.web import free_port  # one rule for picking ports: never the same one twice in a process

REPO = Path(__file__).resolve().parent.parent
BROWNOUT = [str(Path(sys.executable).with_name("brownout"))]  # the console script, as users run it


@dataclass
class ProxyProcess:
    """A ``brownout proxy`` subprocess and the addresses it serves."""

    process: subprocess.Popen[bytes]
    admin: str
    routes: dict[str, str]
    config_path: Path
    token: str | None = None
    toxiproxy: str | None = None
    stderr_path: Path = field(default=Path())

    def url(self, route: str, path: str = "/") -> str:
        return f"http://{self.routes[route]}{path}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
        return events

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


_START_TRIES = 3


class _PortTaken(RuntimeError):
    """The proxy could not bind a port picked free for it: another process took it in between."""


def start_proxy(tmp_path: Path, config: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 15.0) -> ProxyProcess:
    """Write ``config`` (free ports filled in where ``listen`` is missing) and run ``brownout proxy``;
    when a port picked for it is taken before it binds (the tests run in parallel), with new ones."""
    for _ in range(_START_TRIES - 1):
        try:
            return _start_proxy_once(tmp_path, config, env, timeout)
        except _PortTaken:
            pass
    return _start_proxy_once(tmp_path, config, env, timeout)


def _start_proxy_once(tmp_path: Path, config: dict[str, Any], env: dict[str, str] | None, timeout: float) -> ProxyProcess:
    config = json.loads(json.dumps(config))
    config.setdefault("admin", {}).setdefault("listen", f"127.0.0.1:{free_port()}")
    for route in config.get("routes", []):
        route.setdefault("listen", f"127.0.0.1:{free_port()}")
    if "toxiproxy_api" in config:
        config["toxiproxy_api"].setdefault("listen", f"127.0.0.1:{free_port()}")
    path = tmp_path / f"brownout-{free_port()}.yaml"
    path.write_text(yaml.safe_dump(config))
    stderr_path = path.with_suffix(".log")
    process = subprocess.Popen(
        [*BROWNOUT, "proxy", "--config", str(path)], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=stderr_path.open("wb"), env={**os.environ, **(env or {})},
    )
    token = config["admin"].get("token")
    if token and token.startswith("${"):
        token = (env or {}).get(token[2:-1].split(":-")[0])
    proxy = ProxyProcess(
        process=process, admin=f"http://{config['admin']['listen']}",
        routes={r["name"]: r["listen"] for r in config.get("routes", [])}, config_path=path, token=token,
        toxiproxy=f"http://{config['toxiproxy_api']['listen']}" if "toxiproxy_api" in config else None,
        stderr_path=stderr_path,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = stderr_path.read_text()
            taken = "address already in use" in log
            raise (_PortTaken if taken else RuntimeError)(f"proxy exited {process.returncode}: {log}")
        try:
            with socket.create_connection(tuple(config["admin"]["listen"].rsplit(":", 1)), timeout=0.2):  # type: ignore[arg-type]
                return proxy
        except OSError:
            time.sleep(0.05)
    proxy.stop(signal.SIGKILL)
    raise RuntimeError(f"proxy did not start: {stderr_path.read_text()}")


@pytest.fixture
def proxy_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[ProxyProcess] = []

    def factory(config: dict[str, Any], env: dict[str, str] | None = None) -> ProxyProcess:
        proxy = start_proxy(tmp_path, config, env)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        if proxy.process.poll() is None:
            proxy.stop(signal.SIGKILL)


async def serve_app(app: web.Application, port: int | None = None) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")
