"""Failover and retries end to end: real GPU workers, each behind its own real Brownout sidecar.

Requests go clients → main proxy → model API → sidecar i → GPU worker replica i, as
``brownout demo`` wires them. Each test's transactions get fresh ids so the score cache
(keyed by the whole body) never answers for a GPU worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from multidict import CIMultiDict

from brownout.demo.game_day import GameDay, game_day
from brownout.demo.model import DemoBundle
from brownout.demo.retry import RetryPolicy
from tests.demo.test_metrics import scrape, value


def _cases(golden: list[dict[str, Any]], tag: str, n: int) -> list[tuple[dict[str, Any], float]]:
    """n golden bodies under new transaction ids (not a feature: the expected score stands)."""
    return [({**g["body"], "transaction_id": f"{tag}-{i}"}, g["expected"]) for i, g in enumerate(golden[:n])]


async def _predict(http: aiohttp.ClientSession, day: GameDay, body: dict[str, Any],
                   request_id: str | None = None) -> tuple[int, CIMultiDict[str], dict[str, Any]]:
    headers = {"X-Request-Id": request_id} if request_id else {}
    async with http.post(f"{day.target}/predict", json=body, headers=headers) as resp:
        return resp.status, resp.headers.copy(), await resp.json()


async def _sigkill(pidfile: str) -> None:
    pid = int(Path(pidfile).read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"process {pid} did not die")


async def _attempts(http: aiohttp.ClientSession, day: GameDay) -> dict[tuple[str, str, str], float]:
    """GPU worker attempts by (replica, attempt, outcome), from the model API's metrics."""
    metrics = await scrape(http, day.model_api_url)
    out = {}
    for (name, labels), v in metrics.items():
        got = dict(labels)
        if name == "demo_model_api_upstream_attempts_total" and got["upstream"] == "gpu-worker" and v:
            out[(got["replica"], got["attempt"], got["outcome"])] = v
    return out


async def test_one_replica_killed_fails_over_both_killed_degrade(demo_cache: Path, bundle: DemoBundle,
                                                                 golden: list[dict[str, Any]],
                                                                 http: aiohttp.ClientSession) -> None:
    async with game_day(demo_cache, processes=True) as day:
        env = day.env()
        assert len(day.sidecars) == 2 and {s.admin_url for s in day.sidecars} == {
            env["BROWNOUT_GPU_ADMIN_0"], env["BROWNOUT_GPU_ADMIN_1"]}
        assert env["BROWNOUT_GPU_WORKER_PIDFILE"] == env["BROWNOUT_GPU_WORKER_0_PIDFILE"]
        before = await _attempts(http, day)
        assert before.get(("0", "first", "ok"), 0) > 0 and before.get(("1", "first", "ok"), 0) > 0  # spread

        await _sigkill(env["BROWNOUT_GPU_WORKER_0_PIDFILE"])
        cases = _cases(golden, "one-down", 40)
        for body, expected in cases:
            status, _, answer = await _predict(http, day, body)
            assert status == 200 and answer["degraded"] is False, answer
            assert answer["score"] == pytest.approx(expected, abs=1e-12)
        after = await _attempts(http, day)
        failed_over = after.get(("1", "retry", "ok"), 0) - before.get(("1", "retry", "ok"), 0)
        refused = after.get(("0", "first", "error"), 0) - before.get(("0", "first", "error"), 0)
        assert failed_over == refused == len(cases) / 2  # round robin: every other request met the dead one
        sidecar = await scrape(http, day.sidecars[0].admin_url)
        assert value(sidecar, "brownout_requests_total", route="gpu-worker", status="502") >= refused

        await _sigkill(env["BROWNOUT_GPU_WORKER_1_PIDFILE"])
        fallback = float(bundle.model.score(np.array([bundle.model.defaults]))[0])
        for body, _ in _cases(golden, "all-down", 20):
            status, _, answer = await _predict(http, day, body)
            assert status == 200 and answer["degraded"] is True, answer
            assert answer["score"] == fallback and answer["fraud"] is False
            assert answer["degraded_reason"].startswith("gpu worker unavailable: replica ")
            assert "answered 502" in answer["degraded_reason"]  # each sidecar's view of its dead worker
        api = await scrape(http, day.model_api_url)
        assert value(api, "demo_model_api_fallbacks_total", reason="gpu_unavailable") == 20


async def _fault(http: aiohttp.ClientSession, admin: str, body: dict[str, Any]) -> str:
    async with http.post(admin + "/faults", json={"ttl": 120, **body}) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])


async def _arrivals(http: aiohttp.ClientSession, day: GameDay) -> float:
    """Requests both sidecars' gpu-worker routes saw (answered by a fault or by the worker)."""
    total = 0.0
    for sidecar in day.sidecars:
        metrics = await scrape(http, sidecar.admin_url)
        total += sum(v for (name, labels), v in metrics.items()
                     if name == "brownout_requests_total" and dict(labels)["route"] == "gpu-worker")
    return total


SHED = {"type": "error", "route": "gpu-worker", "match": {"path": "/v1/score", "probability": 0.5},
        "params": {"status": 503, "headers": {"Retry-After": 1}}}


@pytest.mark.parametrize(("spec", "low", "high"), [
    ("immediate:3", 1.6, 2.2),  # 1 + 1/2 + 1/4 + 1/8 attempts per request: the storm
    ("backoff:3", 1.0, 1.0),    # Retry-After (1 s) is past the 0.5 s budget: no retry at all
    ("none", 1.0, 1.0),
])
async def test_retry_amplification_on_shedding_replicas_by_policy(
        demo_cache: Path, golden: list[dict[str, Any]], http: aiohttp.ClientSession,
        spec: str, low: float, high: float) -> None:
    async with game_day(demo_cache, processes=False, retry=RetryPolicy.parse(spec)) as day:
        for i, sidecar in enumerate(day.sidecars):
            await _fault(http, sidecar.admin_url, {**SHED, "seed": 10 + i})
        before_arrivals, before = await _arrivals(http, day), await _attempts(http, day)
        shed = 0
        cases = _cases(golden, f"storm-{spec}", 160)
        for body, _ in cases:
            status, headers, answer = await _predict(http, day, body)
            if status == 503:
                shed += 1
                assert headers["Retry-After"] == "1" and answer["error"] == "GPU worker overloaded"
            else:
                assert status == 200 and answer["degraded"] is False
        arrivals = await _arrivals(http, day) - before_arrivals
        attempts = sum((await _attempts(http, day)).values()) - sum(before.values())
    assert arrivals == attempts  # every attempt the model API counted reached a sidecar, and no more
    assert low <= arrivals / len(cases) <= high, arrivals / len(cases)
    if spec == "immediate:3":
        assert shed < 0.2 * len(cases)  # retries hide the shedding from clients (and multiply the load)
    else:
        assert 0.3 * len(cases) < shed < 0.7 * len(cases)  # back-pressure reaches the clients


async def test_every_attempt_carries_the_clients_request_id(demo_cache: Path, golden: list[dict[str, Any]],
                                                            http: aiohttp.ClientSession) -> None:
    """A fault that answers 500 only to one X-Request-Id sees each of that request's attempts."""
    async with game_day(demo_cache, processes=False, retry=RetryPolicy.parse("immediate:3")) as day:
        marked = {"type": "error", "route": "gpu-worker", "params": {"status": 500},
                  "match": {"headers": {"X-Request-Id": "marked-*"}}}
        ids = [(s.admin_url, await _fault(http, s.admin_url, marked)) for s in day.sidecars]
        [(body, expected), (other, other_expected)] = _cases(golden, "rid", 2)
        status, headers, answer = await _predict(http, day, body, request_id="marked-7")
        assert status == 200 and answer["degraded"] is True and headers["X-Request-Id"] == "marked-7"
        status, _, answer = await _predict(http, day, other, request_id="plain-7")
        assert status == 200 and answer["score"] == pytest.approx(other_expected, abs=1e-12)
        injections = 0
        for admin, fault_id in ids:
            async with http.get(f"{admin}/faults/{fault_id}") as resp:
                injections += (await resp.json())["injections"]
    assert injections == 4  # the first attempt and three retries, alternating replicas, one id
