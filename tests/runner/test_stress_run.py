"""``brownout run`` with a stress shape: every bound of ``steady_state.sla`` can stop the search."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import yaml
from aiohttp import web

from tests.conftest import serve_app
from tests.runner.conftest import brownout_run

CAPACITY = 100.0  # requests per second, served first in first out


def capacity_app() -> web.Application:
    """A server of exactly CAPACITY requests/s: past it a queue builds, and every answer waits longer."""
    next_free = [0.0]

    async def predict(request: web.Request) -> web.Response:
        await request.read()
        now = time.monotonic()
        done = max(now, next_free[0]) + 1.0 / CAPACITY
        next_free[0] = done
        await asyncio.sleep(done - now)
        return web.json_response({"score": 0.5})

    app = web.Application()
    app.router.add_route("*", "/predict", predict)
    return app


async def test_a_stress_run_breaks_by_the_median_bound_alone(tmp_path: Path) -> None:
    runner, url = await serve_app(capacity_app())
    try:
        doc = {
            "version": 1, "title": "stress by the median", "seed": 1,
            "target": {"url": url + "/predict"},
            "load": {"shape": "stress", "from": 40, "step": 30, "step_duration": "1s", "max": 250, "timeout": "5s"},
            # The p99 bound is too loose to ever break: only latency_p50_ms can end the search.
            "steady_state": {"window": "1s", "sla": {"latency_p50_ms": 60, "latency_p99_ms": 60000}},
            "report": {"dir": str(tmp_path / "reports")},
        }
        path = tmp_path / "stress.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        code, out, err = await brownout_run(str(path), timeout=120)
        assert code == 0, out + err
    finally:
        await runner.cleanup()
    journal = json.loads((tmp_path / "reports" / "journal.json").read_text())
    for label in ("without_faults", "with_faults"):
        point = journal["extra"]["stress"][label]
        assert point["breach"] is not None and point["breach"].startswith("latency_p50_ms"), point["describe"]
        assert 70 <= point["held_rate"] <= 130 and point["broke_rate"] == point["held_rate"] + 30, point["describe"]
        last = point["steps"][-1]
        assert [v["sli"] for v in last["verdicts"] if not v["ok"]] == ["latency_p50_ms"]
        assert last["stats"]["p50_ms"] > 60
