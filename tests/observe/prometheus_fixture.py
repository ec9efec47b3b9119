"""A real Prometheus for tests: ``/usr/bin/prometheus`` on a free loopback port, scraping the
``/metrics`` URLs a test names every second, with its storage in a temp dir.

Use the ``prometheus_factory`` fixture (import it into a conftest)::

    prom = await prometheus_factory({"model-api": stack.url + "/metrics"})
    await prom.wait_for_data("demo_model_api_requests_total")
    samples = await prom.query("up")
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from brownout.demo.web import free_port

SCRAPE_INTERVAL_S = 1.0


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None)
    if found is None:  # .ci/run installs it: fail, never skip
        raise AssertionError("prometheus is not installed (Debian: apt-get install prometheus)")
    return found


def scrape_config(jobs: Mapping[str, str | Sequence[str]], interval_s: float = SCRAPE_INTERVAL_S) -> dict[str, Any]:
    """One scrape job per name; each URL gives a target and its metrics path."""
    configs = []
    for job, urls in jobs.items():
        urls = [urls] if isinstance(urls, str) else list(urls)
        paths = {urlsplit(u).path or "/metrics" for u in urls}
        if len(paths) != 1:
            raise ValueError(f"{job}: every URL of a job needs the same path")
        configs.append({"job_name": job, "metrics_path": paths.pop(), "scrape_interval": f"{interval_s:g}s",
                        "scrape_timeout": f"{interval_s:g}s",
                        "static_configs": [{"targets": [urlsplit(u).netloc for u in urls]}]})
    return {"global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s"},
            "scrape_configs": configs}


@dataclass
class PrometheusServer:
    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    async def _get(self, path: str, **params: str) -> Any:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(self.url + path, params=params) as resp:
                return await resp.json()

    async def targets(self) -> list[dict[str, Any]]:
        return list((await self._get("/api/v1/targets"))["data"]["activeTargets"])

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The raw result list of an instant query (an assertion error on an API error)."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        body = await self._get("/api/v1/query", **params)
        assert body["status"] == "success", body
        result = body["data"]["result"]
        return result if body["data"]["resultType"] in ("vector", "matrix") else [{"metric": {}, "value": result}]

    async def wait_until_up(self, timeout_s: float = 30.0) -> None:
        """Until every target has been scraped successfully at least once."""
        deadline = time.monotonic() + timeout_s
        targets: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise AssertionError(f"prometheus exited {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                targets = await self.targets()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                targets = []
            if targets and all(t["health"] == "up" for t in targets):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"targets not up in {timeout_s}s: "
                             f"{[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}")

    async def wait_for_data(self, expr: str, timeout_s: float = 30.0, *, samples: int = 1) -> list[dict[str, Any]]:
        """Until ``expr`` returns at least ``samples`` series (e.g. once rate() has two points)."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = await self.query(expr)
            if len(result) >= samples:
                return result
            await asyncio.sleep(0.25)
        raise AssertionError(f"{expr}: {len(result)} series after {timeout_s}s")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_prometheus(directory: Path, jobs: Mapping[str, str | Sequence[str]], *,
                           interval_s: float = SCRAPE_INTERVAL_S, timeout_s: float = 30.0) -> PrometheusServer:
    """Start Prometheus scraping ``jobs`` (job name → /metrics URL or URLs); wait until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(jobs, interval_s)))
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn",
            stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL)
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"prometheus exited {process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                async with session.get(server.url + "/-/ready") as resp:
                    if resp.status == 200:
                        return server
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.1)
    await server.stop()
    raise AssertionError(f"prometheus not ready in {timeout_s}s: {log_path.read_text()[-2000:]}")


PrometheusFactory = Callable[..., Awaitable[PrometheusServer]]


@pytest.fixture
async def prometheus_factory(tmp_path: Path) -> AsyncIterator[PrometheusFactory]:
    """Start Prometheus servers for this test (``await factory(jobs)``); all are stopped after it."""
    started: list[PrometheusServer] = []

    async def factory(jobs: Mapping[str, str | Sequence[str]], *, wait_up: bool = True,
                      interval_s: float = SCRAPE_INTERVAL_S) -> PrometheusServer:
        server = await start_prometheus(tmp_path / f"prometheus-{len(started)}", jobs, interval_s=interval_s)
        started.append(server)
        if wait_up:
            await server.wait_until_up()
        return server

    yield factory
    for server in started:
        await server.stop()
