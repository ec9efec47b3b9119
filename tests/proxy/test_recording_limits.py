"""Recording never breaks forwarding: a full disk, a full queue or a dead writer drop lines, counted and logged.

The proxy is started as users start it (``brownout proxy --config``); every request sent
during the trouble must still be answered, and what was written must be whole lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.recording import parse_line
from tests.conftest import ProxyProcess
from tests.proxy.recording_helpers import admin_call, files_under, metric, upstream_url, wait_state

__all__ = ["upstream_url"]  # a fixture
REQUESTS = 200


def _config(upstream: str, record_dir: Path, **record: Any) -> dict[str, Any]:
    return {"record": {"dir": str(record_dir), **record}, "routes": [{"name": "api", "upstream": upstream}]}


async def _traffic(proxy: ProxyProcess, n: int = REQUESTS) -> list[int]:
    """``n`` POSTs with ~1 KiB bodies, 8 at a time; the statuses the client got."""
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        async def one(i: int) -> None:
            body = {"n": i, "customer": {"email": "x@example.com"}, "pad": "p" * 1000}
            async with session.post(proxy.url("api", "/predict"), json=body) as r:
                await r.read()
                statuses.append(r.status)
        for start in range(0, n, 8):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 8))))
    return statuses


def _writer_pid(proxy: ProxyProcess) -> int:
    pid = proxy.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


async def _full_disk_drops_lines_and_forwarding_goes_on(proxy: ProxyProcess, record_dir: Path) -> None:
    _, rec = await admin_call(proxy, "POST", "/recordings", {"route": "api"})
    statuses = await _traffic(proxy)
    assert statuses == [200] * REQUESTS  # every request answered, as without recording
    _, rec = await admin_call(proxy, "PATCH", f"/recordings/{rec['id']}", {"end": True})
    rec = await wait_state(proxy, rec["id"], "ended")
    await admin_call(proxy, "GET", f"/recordings/{rec['id']}/data")  # flushes the writer's counts
    _, rec = await admin_call(proxy, "GET", f"/recordings/{rec['id']}")
    dropped = await metric(proxy, "brownout_recording_dropped_total", route="api", reason="disk_full")
    written = await metric(proxy, "brownout_recording_lines_total", route="api")
    assert dropped > 0 and written > 0 and dropped + written == REQUESTS
    assert rec["dropped"] == {"disk_full": dropped} and rec["lines"] == written
    lines = [line for f in files_under(record_dir) for line in f.read_text().splitlines()]
    assert len(lines) == written and all(parse_line(line).response is not None for line in lines)  # whole lines
    events = [e for e in proxy.log_events() if e.get("event") in ("recording_dropped", "recording_write_failed")]
    assert {e.get("reason") for e in events} == {"disk_full"}


async def test_a_full_tmpfs_drops_lines_and_keeps_forwarding(proxy_factory: Any, upstream_url: str,
                                                             tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE test covers a full disk without it")
    record_dir = tmp_path / "small"
    record_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(record_dir)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"this container cannot mount a tmpfs: {mounted.stderr.strip()}")
    proxy = None
    try:
        proxy = proxy_factory(_config(upstream_url, record_dir))
        await _full_disk_drops_lines_and_forwarding_goes_on(proxy, record_dir)
    finally:
        if proxy is not None:
            proxy.stop()
        subprocess.run(["umount", "-l", str(record_dir)], check=False)


async def test_a_file_size_limit_on_the_writer_drops_lines_and_keeps_forwarding(
        proxy_factory: Any, upstream_url: str, tmp_path: Path) -> None:
    record_dir = tmp_path / "rec"
    proxy = proxy_factory(_config(upstream_url, record_dir))
    resource.prlimit(_writer_pid(proxy), resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    await _full_disk_drops_lines_and_forwarding_goes_on(proxy, record_dir)


async def test_a_full_queue_drops_on_the_proxy_side(proxy_factory: Any, upstream_url: str, tmp_path: Path) -> None:
    proxy = proxy_factory(_config(upstream_url, tmp_path / "rec", queue_bytes=1))
    _, rec = await admin_call(proxy, "POST", "/recordings", {"route": "api"})
    assert await _traffic(proxy, 40) == [200] * 40
    assert await metric(proxy, "brownout_recording_dropped_total", route="api", reason="queue_full") == 40
    _, rec = await admin_call(proxy, "GET", f"/recordings/{rec['id']}")
    assert rec["dropped"] == {"queue_full": 40} and rec["lines"] == 0
    [event] = [e for e in proxy.log_events() if e.get("event") == "recording_dropped"]  # once, not per line
    assert event["reason"] == "queue_full" and event["route"] == "api"


async def test_a_dead_writer_is_logged_and_forwarding_goes_on(proxy_factory: Any, upstream_url: str,
                                                              tmp_path: Path) -> None:
    proxy = proxy_factory(_config(upstream_url, tmp_path / "rec"))
    _, rec = await admin_call(proxy, "POST", "/recordings", {"route": "api"})
    os.kill(_writer_pid(proxy), signal.SIGKILL)
    await asyncio.sleep(0.3)
    assert await _traffic(proxy, 16) == [200] * 16
    assert await metric(proxy, "brownout_recording_dropped_total", route="api", reason="writer_down") == 16
    assert any(e.get("event") == "recording_writer_lost" for e in proxy.log_events())


async def test_oversized_exchanges_are_skipped_and_counted(proxy_factory: Any, upstream_url: str,
                                                           tmp_path: Path) -> None:
    proxy = proxy_factory(_config(upstream_url, tmp_path / "rec", max_body="512"))
    _, rec = await admin_call(proxy, "POST", "/recordings", {"route": "api"})
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url("api", "/predict"), json={"n": 1, "pad": "x" * 2000}) as r:
            assert r.status == 200 and json.loads(await r.read())["score"] == 0.01
        async with session.post(proxy.url("api", "/predict"), json={"n": 2}) as r:
            assert r.status == 200
    status, text = await admin_call(proxy, "GET", f"/recordings/{rec['id']}/data")
    assert status == 200 and len(text.splitlines()) == 1
    assert await metric(proxy, "brownout_recording_dropped_total", route="api", reason="too_large") == 1
