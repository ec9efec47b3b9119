"""``brownout faults``: the game-day CLI against a running proxy."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import aiohttp

from tests.conftest import BROWNOUT, REPO


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [*BROWNOUT, "faults", *args], cwd=REPO, capture_output=True,
                                   text=True, timeout=60)


async def test_add_list_remove_clear(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    admin = ("--admin", proxy.admin)
    added = await _cli("add", "error", "--route", "api", "-p", "status=418", "-p", "headers={Retry-After: '2'}",
                       "-m", "path=/echo*", "-m", "methods=[GET]", "--ttl", "1m", "--id", "teapot", "--seed", "3", *admin)
    assert added.returncode == 0, added.stderr
    fault = json.loads(added.stdout)
    assert fault["id"] == "teapot" and fault["params"]["status"] == 418 and fault["match"]["methods"] == ["GET"]
    async with client.get(proxy.url("api", "/echo")) as response:
        assert response.status == 418 and response.headers["Retry-After"] == "2"
    listed = json.loads((await _cli("list", *admin)).stdout)
    assert [f["id"] for f in listed] == ["teapot"] and listed[0]["injections"] == 1
    removed = await _cli("remove", "teapot", *admin)
    assert removed.returncode == 0 and json.loads(removed.stdout)["id"] == "teapot"
    await _cli("add", "latency", "--route", "api", "-p", "delay_ms=1", *admin)
    cleared = json.loads((await _cli("clear", *admin)).stdout)
    assert len(cleared["removed"]) == 1
    assert json.loads((await _cli("list", *admin)).stdout) == []


async def test_errors_name_the_field_and_exit_3(proxied: Any) -> None:
    proxy = proxied()
    bad = await _cli("add", "latency", "--route", "api", "-p", "delay_ms=-1", "--admin", proxy.admin)
    assert bad.returncode == 3 and "params.delay_ms" in bad.stderr
    unknown = await _cli("add", "teleport", "--route", "api", "--admin", proxy.admin)
    assert unknown.returncode == 3 and "latency" in unknown.stderr
    gone = await _cli("list", "--admin", "http://127.0.0.1:9")
    assert gone.returncode == 4 and "unreachable" in gone.stderr


async def test_catalogue_is_read_from_the_code() -> None:
    text = await _cli("catalogue")
    assert text.returncode == 0
    for kind in ("latency", "error", "reset", "hang", "down", "truncate", "throttle", "corrupt", "stream"):
        assert f"\n{kind}\n" in f"\n{text.stdout}"
    entries = json.loads((await _cli("catalogue", "--json")).stdout)
    latency = next(e for e in entries if e["type"] == "latency")
    assert "delay_ms" in latency["params"] and latency["summary"]
