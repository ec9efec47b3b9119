"""The provisioned Grafana dashboard stays true: every PromQL expression in it returns data
from a real Prometheus scraping the demo stack behind a real proxy, after traffic, an
injected fault and a killed-and-restarted GPU worker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from brownout.demo.game_day import GameDay, game_day
from brownout.library import packaged_dir
from tests.conftest import REPO
from tests.observe.prometheus_fixture import PrometheusFactory

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "brownout.json"
# What Grafana puts in for its built-in variables, for a 1 s scrape interval.
BUILTINS = {"__rate_interval": "10s", "__interval": "2s", "__interval_ms": "2000", "__range": "1m",
            "__range_s": "60", "__range_ms": "60000"}


def _variables(dashboard: dict[str, Any]) -> dict[str, str]:
    values = dict(BUILTINS)
    for var in dashboard.get("templating", {}).get("list", []):
        current = var.get("current", {}).get("value")
        if current is None and var.get("options"):
            current = var["options"][0]["value"]
        if current is None:
            current = var.get("query", "")  # constant and textbox variables
        values[var["name"]] = "|".join(current) if isinstance(current, list) else str(current)
    return values


def expand(expr: str, values: dict[str, str]) -> str:
    """Grafana's $name, ${name}, ${name:format} and [[name]] forms, longest names first."""
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise AssertionError(f"unknown dashboard variable {name!r} in {expr}")
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", sub, expr)


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    values = _variables(dashboard)
    panels = [p for row in dashboard["panels"] for p in [row, *row.get("panels", [])]]
    return [(f"{p['title']} [{t['refId']}]", expand(t["expr"], values))
            for p in panels for t in p.get("targets", []) if t.get("expr")]


def test_the_dashboard_is_valid_for_grafana() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] == 39 and dashboard["uid"] == "brownout-demo"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert {p["type"] for p in panels} == {"timeseries"}
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        assert p["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert [t["refId"] for t in p["targets"]] == [chr(65 + i) for i in range(len(p["targets"]))]
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in ("fallback", "queue depth", "batch size", "feature store latency", "cpu"):
        assert topic in titles


def test_grafana_variables_are_expanded() -> None:
    values = {"__rate_interval": "10s", "route": "model-api"}
    assert expand('rate(x{route="$route"}[$__rate_interval])', values) == 'rate(x{route="model-api"}[10s])'
    assert expand("x[${__rate_interval}] [[route]] ${route:regex}", values) == "x[10s] model-api model-api"
    assert all("$" not in e for _, e in dashboard_exprs())


async def _traffic(target: str, stop: asyncio.Event, counts: dict[int, int]) -> None:
    """Predictions through the proxy until told to stop (bounded: 3,000 requests)."""
    corpus = [json.loads(line)["body"] for line in (packaged_dir() / "data" / "transactions.jsonl").read_text().splitlines()[:200]]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for i in range(3000):
            if stop.is_set():
                return
            try:
                async with session.post(f"{target}/predict", json=corpus[i % len(corpus)]) as resp:
                    await resp.read()
                    counts[resp.status] = counts.get(resp.status, 0) + 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counts[0] = counts.get(0, 0) + 1
            await asyncio.sleep(0.01)


async def _kill_and_restart_worker(day: GameDay) -> subprocess.Popen[bytes]:
    worker = day.backends.worker_processes[0]
    assert worker.pidfile is not None
    os.kill(int(worker.pidfile.read_text()), signal.SIGKILL)
    await asyncio.sleep(1.5)  # requests meet a refused connection: upstream errors
    restarted = subprocess.Popen(list(worker.command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(worker.url + "/healthz") as resp:
                    if resp.status == 200:
                        return restarted
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the GPU worker did not come back")


async def test_every_dashboard_expression_returns_data(demo_cache: Path, bundle: Any,
                                                       prometheus_factory: PrometheusFactory) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    async with game_day(demo_cache, processes=True) as day:
        prom = await prometheus_factory({
            "brownout": day.admin_url + "/metrics", "model-api": day.model_api_url + "/metrics",
            "feature-store": day.backends.feature_store_url + "/metrics",
            "gpu-worker": day.backends.worker_url + "/metrics",
            # GPU worker replica 0's sidecar: the upstream errors of its killed worker show there.
            "brownout-gpu-0": day.sidecars[0].admin_url + "/metrics",
        })
        stop, counts = asyncio.Event(), dict[int, int]()
        traffic = asyncio.create_task(_traffic(day.target, stop, counts))
        restarted = None
        try:
            await asyncio.sleep(2)
            async with aiohttp.ClientSession() as session:  # the injected fault: half the feature-store calls fail
                async with session.post(day.admin_url + "/faults", json={
                        "type": "error", "route": "feature-store", "params": {"status": 503},
                        "match": {"probability": 0.5}, "ttl": 60}) as resp:
                    assert resp.status in (200, 201), await resp.text()
            await asyncio.sleep(2)
            restarted = await _kill_and_restart_worker(day)
            missing = dict(exprs)
            deadline = time.monotonic() + 40  # rates need two scrapes after the restart
            while missing and time.monotonic() < deadline:
                for title, expr in list(missing.items()):
                    if await prom.query(expr):
                        del missing[title]
                await asyncio.sleep(0.5)
        finally:
            stop.set()
            await traffic
            if restarted is not None and restarted.poll() is None:
                restarted.kill()
                restarted.wait(5)
    assert counts.get(200, 0) > 50, counts
    assert not missing, "dashboard expressions without data:\n" + "\n".join(f"{t}: {e}" for t, e in missing.items())
