"""A fleet of real ``brownout proxy`` processes on 127.0.0.2, .3, ... behind one name.

Every sidecar's admin API listens on the same port of its own loopback address, as replicas
of a compose service or pods behind a headless Service do. The name resolves to all of them
only inside a private mount namespace where a hosts file is bind-mounted over /etc/hosts
(``unshare -m``, as root): the commands under test run there, as users run them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from brownout.demo.web import free_port
from tests.conftest import BROWNOUT, REPO, ProxyProcess

NAME, NAME10 = "fleet", "fleet10"  # the first five sidecars; all ten


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def _port_free_everywhere(hosts: list[str]) -> int:
    while True:
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue


@dataclass
class Fleet:
    folder: Path
    admin_port: int
    upstream: str
    sidecars: list[ProxyProcess] = field(default_factory=list)
    hosts_file: Path = Path()

    def discover(self, name: str = NAME) -> str:
        return f"http://{name}:{self.admin_port}"

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.{2 + i}" for i in range(len(self.sidecars))]

    def admin(self, i: int) -> str:
        return self.sidecars[i].admin

    def faults(self, i: int) -> list[dict[str, Any]]:
        return requests.get(self.admin(i) + "/faults", timeout=10).json()  # type: ignore[no-any-return]

    def added(self, i: int) -> list[str]:
        """Ids of every fault sidecar ``i`` was ever given (its JSON log)."""
        return [e["fault_id"] for e in self.sidecars[i].log_events() if e.get("event") == "fault_added"]

    def clear(self) -> None:
        for i, proxy in enumerate(self.sidecars):
            if proxy.process.poll() is None:
                requests.delete(self.admin(i) + "/faults", timeout=10)

    def kill(self, i: int) -> None:
        self.sidecars[i].stop(signal.SIGKILL)

    def revive(self, i: int) -> None:
        if self.sidecars[i].process.poll() is not None:
            self.sidecars[i] = _launch(self.folder, self.addresses[i], self.admin_port, self.upstream)
            _wait([self.sidecars[i]])

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``brownout ARGS`` where the fleet's names resolve to every sidecar."""
        command = " ".join(_quote(a) for a in [*BROWNOUT, *args])
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", f"mount --bind {self.hosts_file} /etc/hosts && exec {command}"],
            cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def popen(self, *args: str) -> subprocess.Popen[str]:
        command = " ".join(_quote(a) for a in [*BROWNOUT, *args])
        return subprocess.Popen(
            ["unshare", "-m", "sh", "-c", f"mount --bind {self.hosts_file} /etc/hosts && exec {command}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def experiment(self, method: list[dict[str, Any]], *, proxies: list[dict[str, Any]] | None = None,
                   duration: str = "3s", name: str = "exp.yaml", **extra: Any) -> Path:
        doc: dict[str, Any] = {
            "version": 1, "title": "fleet", "seed": 11,
            "target": {"url": self.sidecars[0].url("api", "/")},
            "proxies": proxies if proxies is not None else [{"name": "sidecars", "discover": self.discover()}],
            "load": {"shape": "constant", "rate": 10, "duration": duration, "timeout": "2s"},
            "steady_state": {"window": "1s", "baseline": "1s", "sla": {"error_rate": 1.0}},
            "method": method,
            "recovery": {"within": "1s"},
            "report": {"dir": str(self.folder / "reports")},
            **extra,
        }
        path = self.folder / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def journal(self) -> dict[str, Any]:
        return json.loads((self.folder / "reports" / "journal.json").read_text())  # type: ignore[no-any-return]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _launch(folder: Path, address: str, admin_port: int, upstream: str) -> ProxyProcess:
    config = {"admin": {"listen": f"{address}:{admin_port}"},
              "routes": [{"name": "api", "listen": f"{address}:{free_port(address)}", "upstream": upstream}],
              "fault_ttl": {"default": "30s", "max": "5m"}}
    path = folder / f"sidecar-{address}.yaml"
    path.write_text(yaml.safe_dump(config))
    log = path.with_suffix(".log")
    process = subprocess.Popen([*BROWNOUT, "proxy", "--config", str(path)], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=log.open("wb"))
    return ProxyProcess(process=process, admin=f"http://{address}:{admin_port}",
                        routes={"api": config["routes"][0]["listen"]}, config_path=path, stderr_path=log)


def _wait(proxies: list[ProxyProcess], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for proxy in proxies:
        host, port = proxy.admin.removeprefix("http://").rsplit(":", 1)
        while True:
            if proxy.process.poll() is not None:
                raise RuntimeError(f"sidecar exited {proxy.process.returncode}: {proxy.stderr_path.read_text()}")
            try:
                with socket.create_connection((host, int(port)), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sidecar {proxy.admin} did not start") from None
                time.sleep(0.05)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Ten sidecars: the name ``fleet`` resolves to the first five, ``fleet10`` to all ten."""
    if os.geteuid() != 0:
        pytest.skip("needs root for unshare -m and mount --bind (CI runs as root)")
    folder = tmp_path_factory.mktemp("fleet")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    addresses = [f"127.0.0.{2 + i}" for i in range(10)]
    port = _port_free_everywhere(addresses)
    fleet = Fleet(folder, port, upstream)
    fleet.sidecars = [_launch(folder, a, port, upstream) for a in addresses]
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
    lines += [f"{a} {NAME} {NAME10}" if i < 5 else f"{a} {NAME10}" for i, a in enumerate(addresses)]
    fleet.hosts_file = folder / "hosts"
    fleet.hosts_file.write_text("\n".join(lines) + "\n")
    try:
        _wait(fleet.sidecars)
        yield fleet
    finally:
        for proxy in fleet.sidecars:
            if proxy.process.poll() is None:
                proxy.stop(signal.SIGKILL)
        server.shutdown()


@pytest.fixture
def clean(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet, every sidecar up and without faults before and after the test."""
    for i in range(len(fleet.sidecars)):
        fleet.revive(i)
    fleet.clear()
    yield fleet
    for i in range(len(fleet.sidecars)):
        fleet.revive(i)
    fleet.clear()

