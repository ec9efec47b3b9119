"""A real Prometheus beside ``brownout demo``, so game days can judge the stack with PromQL probes.

Debian's ``prometheus`` (``/usr/bin/prometheus``), when installed, is started on a free
loopback port with its storage in a temp dir, scraping every second the model API, the GPU
worker, the feature store (jobs ``model-api``, ``gpu-worker``, ``feature-store``) and the
proxy (job ``brownout``). Its URL is exported as ``BROWNOUT_PROMETHEUS``, which the library's
probes read (``${BROWNOUT_PROMETHEUS:-http://127.0.0.1:9090}``). Without the binary the
demo runs on and says so; a game day with probes then stops at preflight (exit 4).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import yaml

from faults.errors import Unreachable

from .game_day import GameDay
from .web import free_port

SCRAPE_INTERVAL_S = 1.0
ENV = "BROWNOUT_PROMETHEUS"
MISSING = ("prometheus is not installed (Debian: apt-get install prometheus): the demo runs without it, "
           "and game days with PromQL probes cannot pass preflight")


def find_prometheus() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None


@dataclass(frozen=True)
class DemoPrometheus:
    url: str
    directory: Path

    def env(self) -> dict[str, str]:
        return {ENV: self.url}


def scrape_config(jobs: Mapping[str, str], interval_s: float = SCRAPE_INTERVAL_S) -> dict[str, object]:
    """One job per service: its base URL (``http://host:port``), scraped at ``/metrics``."""
    every = f"{interval_s:g}s"
    return {
        "global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every},
        "scrape_configs": [{"job_name": job, "metrics_path": "/metrics",
                            "static_configs": [{"targets": [urlsplit(url).netloc]}]} for job, url in jobs.items()],
    }


async def _wait_ready(url: str, process: asyncio.subprocess.Process, log: Path, jobs: int, timeout_s: float) -> None:
    """Until it answers and has scraped every target once (so the first window has data)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise Unreachable(f"prometheus exited with status {process.returncode}: {log.read_text()[-500:]}")
            with suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError, KeyError, TypeError):
                async with session.get(url + "/api/v1/targets") as resp:
                    targets = (await resp.json())["data"]["activeTargets"]
                    if len(targets) == jobs and all(t["health"] == "up" for t in targets):
                        return
            await asyncio.sleep(0.2)
    raise Unreachable(f"prometheus at {url} did not scrape the demo in {timeout_s:g}s (see {log})")


@asynccontextmanager
async def start_prometheus(jobs: Mapping[str, str], *, host: str = "127.0.0.1", interval_s: float = SCRAPE_INTERVAL_S,
                           timeout_s: float = 30.0) -> AsyncIterator[DemoPrometheus]:
    """Prometheus scraping ``jobs`` (job name → service base URL) until the block exits."""
    binary = find_prometheus()
    if binary is None:
        raise Unreachable(MISSING)
    with tempfile.TemporaryDirectory(prefix="brownout-prometheus-") as tmp:
        directory = Path(tmp)
        config = directory / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(jobs, interval_s), sort_keys=False))
        port = free_port(host)
        log_path = directory / "prometheus.log"
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={host}:{port}", "--storage.tsdb.retention.time=1d", "--log.level=warn",
                stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL)
        url = f"http://{host}:{port}"
        try:
            await _wait_ready(url, process, log_path, len(jobs), timeout_s)
            yield DemoPrometheus(url, directory)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def demo_jobs(model_api: str, gpu_worker: str, feature_store: str, admin: str) -> dict[str, str]:
    return {"model-api": model_api, "gpu-worker": gpu_worker, "feature-store": feature_store, "brownout": admin}


@asynccontextmanager
async def demo_prometheus(day: GameDay) -> AsyncIterator[DemoPrometheus | None]:
    """Prometheus scraping a running game day; None, with a message on stdout, when it is not installed."""
    if find_prometheus() is None:
        print(MISSING, flush=True)
        yield None
        return
    jobs = demo_jobs(day.model_api_url, day.backends.worker_url, day.backends.feature_store_url, day.admin_url)
    async with start_prometheus(jobs) as prometheus:
        yield prometheus
