"""Child processes of the demo: a throwaway redis-server, the services and proxy sidecars.

Real processes matter for chaos: a ``process`` kill target needs a pid file and a restart
command that brings the service back on the same port.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from faults.errors import Unreachable

from .web import free_port


def find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    url: str                  # http://host:port, or redis://host:port/0
    pid: int
    pidfile: Path | None
    command: tuple[str, ...]  # restarting it brings the service back on the same port

    @property
    def restart_command(self) -> str:
        return shlex.join(self.command)


async def _stop(proc: asyncio.subprocess.Process, pidfile: Path | None) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    # A chaos action may have killed our child and restarted the service under a new pid.
    if pidfile is not None and pidfile.exists():
        with suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            if pid != proc.pid:
                os.kill(pid, signal.SIGTERM)
        pidfile.unlink(missing_ok=True)


async def _wait_tcp(host: str, port: int, proc: asyncio.subprocess.Process, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise Unreachable(f"process exited with status {proc.returncode} before listening on {host}:{port}")
        with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        await asyncio.sleep(0.05)
    raise Unreachable(f"nothing listening on {host}:{port} in time")


@asynccontextmanager
async def redis_server(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[ServiceProcess]:
    """A redis-server with no persistence on a free port; Unreachable if none is installed."""
    binary = find_redis_server()
    if binary is None:
        raise Unreachable("redis-server is not installed")
    port = port or free_port(host)
    command = (binary, "--port", str(port), "--bind", host, "--save", "", "--appendonly", "no",
               "--dir", os.path.realpath(os.environ.get("TMPDIR", "/tmp")))
    proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        await _wait_tcp(host, port, proc, time.monotonic() + 10)
        yield ServiceProcess("redis", f"redis://{host}:{port}/0", proc.pid, None, command)
    finally:
        await _stop(proc, None)


async def _wait_http(url: str, proc: asyncio.subprocess.Process, deadline: float) -> None:
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise Unreachable(f"{url}: process exited with status {proc.returncode}")
            with suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise Unreachable(f"{url}: not healthy in time")


@asynccontextmanager
async def _child(name: str, command: tuple[str, ...], url: str, *, run_dir: Path, pidfile: Path | None,
                 env: dict[str, str] | None, start_timeout_s: float) -> AsyncIterator[ServiceProcess]:
    """Run ``command`` (output to run_dir/NAME.log) until the block exits; ready once ``url``/healthz is 200."""
    log = (run_dir / f"{name}.log").open("ab")
    proc = await asyncio.create_subprocess_exec(*command, stdout=log, stderr=log, env={**os.environ, **(env or {})})
    try:
        await _wait_http(url, proc, time.monotonic() + start_timeout_s)
        yield ServiceProcess(name, url, proc.pid, pidfile, command)
    finally:
        await _stop(proc, pidfile)
        log.close()


@asynccontextmanager
async def service_process(service: str, args: Sequence[str], *, host: str = "127.0.0.1", port: int = 0,
                          run_dir: Path, env: dict[str, str] | None = None, label: str | None = None,
                          start_timeout_s: float = 60.0) -> AsyncIterator[ServiceProcess]:
    """``python -m brownout.demo <service> --host --port --pidfile ...`` until the block exits.

    ``label`` (default: the service) names the pid and log files, for several replicas of one service.
    """
    name = label or service
    port = port or free_port(host)
    pidfile = run_dir / f"{name}.pid"
    command = (sys.executable, "-m", "brownout.demo", service, "--host", host, "--port", str(port),
               "--pidfile", str(pidfile), *args)
    async with _child(name, command, f"http://{host}:{port}", run_dir=run_dir, pidfile=pidfile, env=env,
                      start_timeout_s=start_timeout_s) as proc:
        yield proc


@asynccontextmanager
async def proxy_process(name: str, config: dict[str, object], *, run_dir: Path,
                        start_timeout_s: float = 30.0) -> AsyncIterator[ServiceProcess]:
    """``brownout proxy --config run_dir/NAME.yaml`` (a sidecar); its ``url`` is the admin API's."""
    path = run_dir / f"{name}.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML: no dumper needed
    admin = config["admin"]
    assert isinstance(admin, dict)
    command = (sys.executable, "-m", "brownout.cli", "proxy", "--config", str(path), "--log-level", "warning")
    async with _child(name, command, f"http://{admin['listen']}", run_dir=run_dir, pidfile=None, env=None,
                      start_timeout_s=start_timeout_s) as proc:
        yield proc
