"""The replay shape: a recording's requests, in the order they started, at their recorded times scaled."""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

import pytest
from aiohttp import web

from brownout.load.generator import run_load
from brownout.load.payloads import PayloadSource
from brownout.load.replay import ReplayShape, load_recorded, replay_shape
from brownout.load.schedule import arrival_times
from brownout.runner.shape import HeldTail, baseline_shape
from faults.errors import InvalidInput
from tests.conftest import serve_app


def _recording(path: Path, starts: list[float], *, shuffle: bool = True) -> Path:
    """Lines as the proxy writes them: in the order exchanges ended, each with the time it started."""
    lines = [{"method": "POST", "path": "/hit", "headers": {"Content-Type": "application/json"}, "body": {"k": k},
              "ts": 1_700_000_000 + t, "faults": [],
              "response": {"status": 200, "headers": {}, "body": {"ok": k}, "latency_ms": 1.0}}
             for k, t in enumerate(starts)]
    if shuffle:
        random.Random(3).shuffle(lines)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_replay_follows_the_recorded_order_and_offsets(tmp_path: Path) -> None:
    path = _recording(tmp_path / "rec.jsonl", [0.0, 0.25, 0.3, 1.0, 3.0])
    recorded = load_recorded(path, by_time=True)
    assert [json.loads(t.body.render(None)) for t in recorded.templates] == [{"k": k} for k in range(5)]  # type: ignore[arg-type, union-attr]
    assert [r.body for r in recorded.responses] == [{"ok": k} for k in range(5)]  # type: ignore[union-attr]
    shape = replay_shape(recorded, 2.0)
    assert shape.offsets == pytest.approx((0.0, 0.125, 0.15, 0.5, 1.5)) and shape.duration == 1.5  # span / speed
    assert list(arrival_times(shape)) == list(shape.offsets)
    assert shape.mean_rate == pytest.approx(5 / 1.5)
    assert sum(seg.area for seg in shape.segments()) == pytest.approx(5)
    held = HeldTail(shape, 1.5)  # the recovery watch goes on at the replay's mean rate
    times = list(arrival_times(held))
    assert times[:5] == list(shape.offsets) and len(times) == 5 + 5 and all(1.5 < t < 3.0 for t in times[5:])
    assert baseline_shape(shape, 2.0).rate == pytest.approx(5 / 1.5)


def test_replay_errors_name_the_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "no-ts.jsonl"
    path.write_text('{"body": {"a": 1}, "ts": 1.0}\n{"body": {"a": 2}}\n')
    with pytest.raises(InvalidInput) as info:
        load_recorded(path, by_time=True)
    assert info.value.line == 2 and info.value.field == "payloads.ts"
    one = _recording(tmp_path / "one.jsonl", [0.0])
    with pytest.raises(InvalidInput, match="at least two requests"):
        replay_shape(load_recorded(one, by_time=True), 1.0)
    with pytest.raises(InvalidInput) as info:
        replay_shape(load_recorded(_recording(tmp_path / "two.jsonl", [0.0, 1.0]), by_time=True), 0)
    assert info.value.field == "load.speed"


async def test_speed_2_halves_the_recorded_inter_arrival_times_at_a_real_upstream(tmp_path: Path) -> None:
    rng = random.Random(11)
    starts, t = [], 0.0
    for _ in range(240):  # bursts and gaps, about 6 s of recorded traffic
        t += rng.choice([0.002, 0.01, 0.03, 0.05, 0.12])
        starts.append(round(t, 6))
    recorded = load_recorded(_recording(tmp_path / "rec.jsonl", starts), by_time=True)
    arrivals: dict[int, float] = {}

    async def hit(request: web.Request) -> web.Response:
        arrivals[(await request.json())["k"]] = time.monotonic()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hit", hit)
    runner, url = await serve_app(app)
    try:
        shape = replay_shape(recorded, 2.0)
        summary = await run_load(url + "/hit", shape, PayloadSource(recorded.templates, ordered=True),
                                 connections=64, request_timeout=5)
    finally:
        await runner.cleanup()
    assert summary.sent == 240 and summary.dropped == 0 and len(arrivals) == 240
    first = arrivals[0]
    errors = [abs((arrivals[k] - first) - (starts[k] - starts[0]) / 2) for k in range(240)]
    assert statistics.median(errors) <= 0.005, statistics.median(errors)  # median error ≤ 5 ms
    assert summary.planned_s == pytest.approx((starts[-1] - starts[0]) / 2)
    assert isinstance(shape, ReplayShape) and summary.shape == "replay"
