"""docker-compose.yml's commands run as local processes, wired the way compose wires them.

The model API's dependency URLs in compose point at sidecars' routes (the main sidecar, and
one sidecar per GPU worker replica); here each route is followed to its upstream service
through that sidecar's own config (its mounted file, with its compose environment), so the
test also checks that compose, the sidecar configs and the service ports agree.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from brownout.demo.model import CACHE_ENV, DemoBundle
from brownout.demo.processes import find_redis_server
from brownout.demo.stack import DemoStack
from brownout.demo.web import free_port
from proxy.config import load_config

REPO = Path(__file__).resolve().parents[2]
DEMO_PREFIX = ["python", "-m", "brownout.demo"]
URL_FLAGS = ("--feature-store", "--worker", "--redis")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _sidecar_upstreams() -> dict[tuple[str, int], tuple[str, int]]:
    """(sidecar service, route port) → (upstream service, port), from each sidecar's own config."""
    out = {}
    for name, service in _compose().items():
        if service.get("command", [])[:2] != ["brownout", "proxy"]:
            continue
        mount = next(v for v in service["volumes"] if v.endswith(":/etc/brownout/brownout.yaml:ro"))
        env = {"BROWNOUT_TOKEN": "test", **service.get("environment", {})}
        config = load_config(REPO / mount.split(":")[0], env)
        for route in config.routes:
            upstream = route.upstream if "://" in route.upstream else f"tcp://{route.upstream}"
            parts = urlsplit(upstream)
            out[(name, route.address.port)] = (parts.hostname or "", parts.port or 80)
    return out


def _dependency_urls(command: list[str]) -> list[tuple[str, str]]:
    """The model API's dependency URLs: (flag, URL), one per URL (``--worker`` takes several)."""
    return [(flag, url) for flag in URL_FLAGS if flag in command for url in _flag(command, flag).split(",")]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _healthy(url: str, proc: subprocess.Popen[bytes], http: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args} exited with {proc.returncode}"
        try:
            async with http.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not healthy in time")


def test_compose_demo_services_and_sidecar_config_agree() -> None:
    services = _compose()
    demo = {n for n, s in services.items() if s.get("command", [])[:3] == DEMO_PREFIX}
    assert demo == {"model-api", "feature-store", "gpu-worker-0", "gpu-worker-1"}
    assert {"redis", "brownout", "brownout-gpu-0", "brownout-gpu-1", "toxiproxy", "prometheus", "grafana"} <= set(services)
    assert services["toxiproxy"]["profiles"] == ["toxiproxy"]
    upstreams = _sidecar_upstreams()
    for service, port in upstreams.values():
        if service in demo:
            assert int(_flag(services[service]["command"], "--port")) == port, service
    reached = set()
    for flag, url in _dependency_urls(services["model-api"]["command"]):  # every dependency through a sidecar
        target = urlsplit(url)
        reached.add(upstreams[(target.hostname or "", target.port or 80)][0])
    assert reached == {"feature-store", "redis", "gpu-worker-0", "gpu-worker-1"}  # each replica behind its own
    gpu_sidecars = {s for (s, _), (up, _) in upstreams.items() if up.startswith("gpu-worker")}
    assert gpu_sidecars == {"brownout-gpu-0", "brownout-gpu-1"}


def test_dashboard_uses_only_contract_metrics() -> None:
    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "brownout.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"brownout_[a-z_]+", e)}
    contract = {"brownout_requests_total", "brownout_request_duration_seconds_bucket",
                "brownout_faults_injected_total", "brownout_active_faults",
                "brownout_upstream_errors_total", "brownout_tcp_bytes_total"}
    assert used == contract
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    jobs = {c["job_name"]: c["static_configs"][0]["targets"] for c in scrape["scrape_configs"]}
    services = _compose()
    sidecars = {n for n, s in services.items() if s.get("command", [])[:2] == ["brownout", "proxy"]}
    assert sorted(jobs.pop("brownout")) == sorted(f"{n}:8475" for n in sidecars)  # every sidecar scraped
    # Every demo service exports /metrics; Prometheus scrapes each at the port its command listens on.
    for job, targets in jobs.items():
        for target in targets:
            host, port = target.split(":")
            assert host.startswith(job) and _flag(list(services[host]["command"]), "--port") == port, target
    assert {t.split(":")[0] for ts in jobs.values() for t in ts} == {"model-api", "feature-store", "gpu-worker-0",
                                                                     "gpu-worker-1"}


async def test_every_compose_service_command_runs_as_a_local_process(
        bundle: DemoBundle, demo_cache: Path, golden: list[dict[str, Any]],
        processes: list[subprocess.Popen[bytes]], http: aiohttp.ClientSession) -> None:
    services = _compose()
    upstreams = _sidecar_upstreams()
    local: dict[tuple[str, int], str] = {}   # (compose service, port) → local base URL
    env = {**os.environ, CACHE_ENV: str(demo_cache)}

    redis_cmd = list(services["redis"]["command"])
    redis_port = free_port()
    redis_cmd[0] = find_redis_server() or "redis-server"
    redis_cmd[redis_cmd.index("--port") + 1] = str(redis_port)
    processes.append(subprocess.Popen([*redis_cmd, "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL))
    local[("redis", int(_flag(services["redis"]["command"], "--port")))] = f"redis://127.0.0.1:{redis_port}/0"

    def localize(name: str) -> tuple[list[str], str]:
        command = list(services[name]["command"])
        port = free_port()
        compose_port = int(_flag(command, "--port"))
        command[0] = sys.executable
        command[command.index("--host") + 1] = "127.0.0.1"
        command[command.index("--port") + 1] = str(port)
        for flag in URL_FLAGS:
            if flag in command:
                targets = [urlsplit(url) for url in _flag(command, flag).split(",")]
                command[command.index(flag) + 1] = ",".join(
                    local[upstreams[(t.hostname or "", t.port or 80)]] for t in targets)
        local[(name, compose_port)] = f"http://127.0.0.1:{port}"
        return command, local[(name, compose_port)]

    backends = [localize("feature-store"), localize("gpu-worker-0"), localize("gpu-worker-1")]
    for command, _ in backends:
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL))
    for (_, url), proc in zip(backends, processes[1:]):
        await _healthy(url, proc, http)
    api_command, api_url = localize("model-api")
    processes.append(subprocess.Popen(api_command, env=env, stdout=subprocess.DEVNULL))
    await _healthy(api_url, processes[-1], http)

    g = golden[0]
    for cached in (False, True):
        async with http.post(api_url + "/predict", json=g["body"]) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["degraded"] is False and body["cached"] is cached
        assert body["score"] == pytest.approx(g["expected"], abs=1e-12)


async def test_stack_as_processes_has_pidfiles_and_restart_commands(
        demo_cache: Path, bundle: DemoBundle, golden: list[dict[str, Any]], http: aiohttp.ClientSession) -> None:
    async with DemoStack.start(demo_cache, processes=True) as stack:
        procs = stack.backends.processes
        assert set(procs) == {"redis", "feature-store", "gpu-worker"}
        worker = procs["gpu-worker"]
        assert worker.pidfile is not None and int(worker.pidfile.read_text()) == worker.pid
        assert worker.restart_command.split()[1:4] == ["-m", "brownout.demo", "gpu-worker"]
        assert f"--port {worker.url.rsplit(':', 1)[1]}" in worker.restart_command
        assert stack.model_api.process is not None
        async with http.post(stack.url + "/predict", json=golden[1]["body"]) as resp:
            body = await resp.json()
        assert body["score"] == pytest.approx(golden[1]["expected"], abs=1e-12)
    assert not worker.pidfile.exists()
