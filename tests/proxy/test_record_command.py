"""``brownout record`` against a proxy in another process, through its admin API only."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.recording import read_lines
from tests.conftest import BROWNOUT, REPO, ProxyProcess, serve_app
from tests.proxy.recording_helpers import admin_call, upstream_url

__all__ = ["upstream_url"]  # a fixture
TOKEN = "rec-token"


def _proxy(proxy_factory: Any, upstream: str, tmp_path: Path) -> ProxyProcess:
    proxy: ProxyProcess = proxy_factory({"admin": {"token": TOKEN}, "record": {"dir": str(tmp_path / "sidecar")},
                                         "routes": [{"name": "api", "upstream": upstream}]})
    return proxy


async def _start(proxy: ProxyProcess, out: Path, *flags: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        *BROWNOUT, "record", "--route", "api", "--out", str(out), "--admin", proxy.admin, *flags,
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "BROWNOUT_TOKEN": TOKEN})
    assert process.stdout is not None
    first = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    assert first.startswith("recording rec-"), first
    return process, first


async def _send(proxy: ProxyProcess, n: int) -> None:
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            async with session.post(proxy.url("api", f"/predict?i={i}"), json={"n": i}) as r:
                assert r.status == 200
                await r.read()


async def test_record_saves_the_stream_when_its_duration_ends(proxy_factory: Any, upstream_url: str,
                                                              tmp_path: Path) -> None:
    proxy = _proxy(proxy_factory, upstream_url, tmp_path)
    out = tmp_path / "here" / "traffic.jsonl"
    out.parent.mkdir()
    process, _ = await _start(proxy, out, "--duration", "3s", "--redact-json-path", "$.n")
    await _send(proxy, 12)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output
    lines = [line for _, line in read_lines(out)]
    assert [line.path for line in lines] == [f"/predict?i={i}" for i in range(12)]
    assert all(line.body == {"n": "[REDACTED]"} and line.response is not None for line in lines)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "saved 12 lines" in output.decode() and "ended: duration" in output.decode()


async def test_ctrl_c_ends_the_recording_early_and_saves_it(proxy_factory: Any, upstream_url: str,
                                                            tmp_path: Path) -> None:
    proxy = _proxy(proxy_factory, upstream_url, tmp_path)
    out = tmp_path / "early.jsonl"
    process, first = await _start(proxy, out, "--duration", "5m", "--sample", "1")
    await _send(proxy, 5)
    process.send_signal(signal.SIGINT)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output
    assert len(list(read_lines(out))) == 5 and "ended: stopped" in output.decode()
    rid = first.split()[1]
    status, rec = await admin_call(proxy, "GET", f"/recordings/{rid}")
    assert status == 200 and rec["state"] == "ended" and rec["end_reason"] == "stopped"


async def test_ctrl_c_while_the_recording_starts_still_ends_and_saves_it(proxy_factory: Any, upstream_url: str,
                                                                       tmp_path: Path) -> None:
    """SIGINT arrives while the proxy has not answered the start yet (held by a relay in front of its
    admin API): the recording still starts, is ended at once, and the (empty) file is saved."""
    proxy = _proxy(proxy_factory, upstream_url, tmp_path)
    asked, answer = asyncio.Event(), asyncio.Event()

    async def relay(request: web.Request) -> web.Response:
        if request.method == "POST" and request.path == "/recordings":
            asked.set()
            await answer.wait()  # until the command has been sent SIGINT
        async with aiohttp.ClientSession() as session, session.request(
                request.method, f"{proxy.admin}{request.path_qs}", data=await request.read(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"}) as r:
            return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner, relay_url = await serve_app(app)
    try:
        out = tmp_path / "interrupted.jsonl"
        process = await asyncio.create_subprocess_exec(
            *BROWNOUT, "record", "--route", "api", "--out", str(out), "--admin", relay_url, "--duration", "5m",
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "BROWNOUT_TOKEN": TOKEN})
        await asyncio.wait_for(asked.wait(), 20)
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.2)  # the signal is delivered while the start is still unanswered
        answer.set()
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, output
        assert "ended: stopped" in output.decode() and out.exists()
        status, listed = await admin_call(proxy, "GET", "/recordings")
        assert status == 200 and [r["state"] for r in listed] == ["ended"], listed
    finally:
        await runner.cleanup()


async def test_a_bad_flag_or_a_proxy_that_does_not_record_is_an_error(proxy_factory: Any, upstream_url: str,
                                                                      tmp_path: Path) -> None:
    off = proxy_factory({"routes": [{"name": "api", "upstream": upstream_url}]})
    for flags, expected, code in (
        (["--duration", "forever"], "--duration", 3),
        (["--duration", "1s", "--sample", "2"], "--sample", 3),
        (["--duration", "1s", "--redact-pattern", "("], "--redact-pattern", 3),
        (["--duration", "1s"], "record.dir", 4),
    ):
        result = subprocess.run([*BROWNOUT, "record", "--route", "api", "--out", str(tmp_path / "x.jsonl"),
                                 "--admin", off.admin, *flags], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert result.returncode == code and expected in result.stderr, (flags, result.stderr)
        assert not (tmp_path / "x.jsonl").exists()
