from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from brownout.demo.features import N_FEATURES
from brownout.demo.model import DemoBundle
from brownout.demo.web import serve
from brownout.demo.worker import WorkerSettings, create_app
from faults.errors import InvalidInput


def _row(bundle: DemoBundle) -> list[float]:
    return list(bundle.model.defaults)


async def test_queue_overflow_under_a_burst_is_503_with_retry_after(bundle: DemoBundle, http: aiohttp.ClientSession) -> None:
    # One batch of one row at a time, 100 ms of "GPU" each, two waiting places.
    settings = WorkerSettings(max_batch=1, max_wait_ms=0, queue_size=2, batch_ms=100, row_ms=0, retry_after_s=2)
    async with serve(create_app(bundle.model, settings)) as worker:
        async def call() -> tuple[int, str | None, dict]:
            async with http.post(worker.url + "/v1/score", json={"instances": [_row(bundle)]}) as resp:
                return resp.status, resp.headers.get("Retry-After"), await resp.json()

        results = await asyncio.gather(*(call() for _ in range(12)))
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 503]
        assert len(ok) + len(refused) == 12
        assert 1 <= len(ok) <= 6 and len(refused) >= 6  # 1 running + 2 queued (+ what drained meanwhile)
        for _, retry_after, body in refused:
            assert retry_after == "2"
            assert body["code"] == "queue_full" and "queue" in body["error"]
        expected = float(bundle.model.score(np.array([_row(bundle)]))[0])
        assert all(body["scores"] == [expected] for _, _, body in ok)
        # The overflow is a spike's symptom, not a broken worker: it serves again once drained.
        status, _, body = await call()
        assert status == 200 and body["scores"] == [expected]
        async with http.get(worker.url + "/stats") as resp:
            stats = await resp.json()
        assert stats["rejected"] == len(refused)


async def test_dynamic_batching_merges_concurrent_requests(bundle: DemoBundle, http: aiohttp.ClientSession) -> None:
    settings = WorkerSettings(max_batch=64, max_wait_ms=50, queue_size=64, batch_ms=5)
    rows = np.array([bundle.model.defaults] * 16)
    rows[:, 0] = np.linspace(1, 900, 16)  # different amounts, so different scores
    async with serve(create_app(bundle.model, settings)) as worker:
        async def call(i: int) -> list[float]:
            async with http.post(worker.url + "/v1/score", json={"instances": [list(rows[i])]}) as resp:
                assert resp.status == 200
                return (await resp.json())["scores"]

        scores = await asyncio.gather(*(call(i) for i in range(16)))
        async with http.get(worker.url + "/stats") as resp:
            stats = await resp.json()
    # Every request got its own row's score back, computed in fewer batches than requests.
    assert [s[0] for s in scores] == [float(v) for v in bundle.model.score(rows)]
    assert stats["rows"] == 16 and stats["batches"] < 16 and stats["max_batch_rows"] > 1


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"instances": []}',
    b'{"instances": [[1, 2, 3]]}',
    b'{"instances": "x"}',
    ('{"instances": [[' + ", ".join(["NaN"] * N_FEATURES) + "]]}").encode(),
    ('{"instances": [[' + ", ".join(["true"] * N_FEATURES) + "]]}").encode(),
])
async def test_bad_instances_are_4xx(bundle: DemoBundle, http: aiohttp.ClientSession, body: bytes) -> None:
    async with serve(create_app(bundle.model)) as worker:
        async with http.post(worker.url + "/v1/score", data=body) as resp:
            assert resp.status in (400, 422)
            assert "error" in await resp.json()


def test_settings_are_validated() -> None:
    with pytest.raises(InvalidInput) as info:
        WorkerSettings(queue_size=0)
    assert info.value.field == "queue_size"
    with pytest.raises(InvalidInput):
        WorkerSettings(max_wait_ms=float("nan"))
