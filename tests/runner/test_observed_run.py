"""``brownout run`` with observers: every sidecar's own counts per window, and the cost of serving
per 1,000 successful predictions, rising under a fault that burns CPU in a measured process."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.conftest import ProxyProcess, serve_app
from tests.runner.conftest import brownout_run
from tests.runner.model_server import write_data

FEATURES = 4000  # floats in every answer: ~80 kB of JSON for a corrupt fault to parse and rewrite


@pytest.fixture
async def big_answers() -> AsyncIterator[str]:
    """A model server whose answers carry a large feature vector (the same bytes every time)."""
    rng = random.Random(3)
    body = json.dumps({"score": 0.5, "features": [round(rng.random(), 6) for _ in range(FEATURES)]}).encode()

    async def predict(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/predict", predict)
    runner, url = await serve_app(app)
    yield url
    await runner.cleanup()


def experiment(folder: Path, proxy: ProxyProcess, **steady: Any) -> Path:
    write_data(folder)
    doc = {
        "version": 1, "title": "observed run", "seed": 3,
        "target": {"url": proxy.url("model", "/predict")},
        "proxies": [{"admin": proxy.admin}],
        "load": {"shape": "constant", "rate": 30, "duration": "6s", "payloads": "payloads.jsonl", "timeout": "3s"},
        "steady_state": {"window": "1s", "baseline": "3s", "sla": {"error_rate": 0.5}, **steady},
        "method": [{"fault": "corrupt", "route": "model", "at": "1s", "duration": "4s",
                    "params": {"ops": [{"op": "scale", "path": "$.features[*]", "factor": 1.5}]}}],
        "recovery": {"within": "1s"},
        "report": {"dir": str(folder / "reports")},
    }
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def test_cost_rises_under_a_fault_that_burns_cpu_in_the_proxy(
        tmp_path: Path, big_answers: str, proxy_factory: Callable[..., ProxyProcess]) -> None:
    proxy = proxy_factory({"routes": [{"name": "model", "upstream": big_answers}]})
    pidfile = tmp_path / "proxy.pid"
    pidfile.write_text(f"{proxy.process.pid}\n")
    path = experiment(tmp_path, proxy, cost={"pidfiles": ["proxy.pid"]})  # relative to the file
    code, out, err = await brownout_run(str(path), "--quiet")
    assert code == 0, out + err
    journal = json.loads((tmp_path / "reports" / "journal.json").read_text())

    phases = {p["phase"]: p["cost"] for p in journal["phases"]}
    assert set(phases) == {"baseline", "method", "recovery"}
    base = phases["baseline"]
    assert base["source"] == f"pidfiles: {pidfile}" and base["successes"] > 0 and base["cpu_seconds"] > 0
    assert base["cpu_seconds_per_1k"] == pytest.approx(base["cpu_seconds"] * 1000 / base["successes"])
    # The windows with the fault in effect: the proxy parses and rewrites every answer.
    faulted = [w["cost"] for w in journal["windows"] if w["active_faults"] == ["corrupt@model"]]
    assert len(faulted) >= 3
    under_fault = sum(c["cpu_seconds"] for c in faulted) * 1000 / sum(c["successes"] for c in faulted)
    assert under_fault > 2.5 * base["cpu_seconds_per_1k"], (under_fault, base)
    # A phase is the sum of its windows.
    baseline_windows = [w["cost"] for w in journal["windows"] if w["phase"] == "baseline"]
    assert base["cpu_seconds"] == pytest.approx(sum(c["cpu_seconds"] for c in baseline_windows))
    assert base["successes"] == sum(w["stats"]["statuses"].get("2xx", 0) for w in journal["windows"]
                                    if w["phase"] == "baseline")
    # Energy: measured where RAPL is readable, otherwise absent with the reason.
    assert (base["joules_per_1k"] is None) == (base["energy_absent"] is not None)
    assert "cost per 1,000 successful predictions (pidfiles:" in out and "CPU-s/1k" in out
    if base["energy_absent"]:
        assert "energy: not measured:" in out
    html = (tmp_path / "reports" / "report.html").read_text()
    assert "Cost per 1,000 successful predictions per window" in html


async def test_every_window_carries_each_sidecars_own_counts(
        tmp_path: Path, big_answers: str, proxy_factory: Callable[..., ProxyProcess]) -> None:
    proxy = proxy_factory({"routes": [{"name": "model", "upstream": big_answers}]})
    path = experiment(tmp_path, proxy)
    code, out, err = await brownout_run(str(path), "--quiet")
    assert code == 0, out + err
    journal = json.loads((tmp_path / "reports" / "journal.json").read_text())
    windows = journal["windows"]
    assert all("cost" not in w for w in windows)  # not asked for
    rows = [w["sidecars"][proxy.admin] for w in windows]
    assert all(r["ok"] and not r["restarted"] for r in rows)
    counted = sum(r["routes"].get("model", {}).get("requests", 0) for r in rows)
    sent = sum(w["stats"]["sent"] for w in windows)
    # The proxy counts an answer when it is done, the load generator a request when it was due:
    # a window's counts may differ by the few requests in flight at its boundary, the run's not.
    assert abs(counted - sent) <= 2, (counted, sent)
    assert all(abs(r["requests"] - w["stats"]["sent"]) <= 6 for r, w in zip(rows, windows)), rows
    assert {s for r in rows for s in r["routes"].get("model", {}).get("statuses", {})} == {"200"}
    by_phase = {p["phase"]: p["sidecars"][proxy.admin]["requests"] for p in journal["phases"]}
    assert sum(by_phase.values()) == counted
