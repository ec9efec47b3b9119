"""Recording through a real proxy (``brownout proxy --config``): what is written is what the client saw.

Each recorded line is compared with what a real client sent and received (bodies decoded:
JSON as documents, SSE as events, gzip unzipped, bytes as bytes), and the whole folder is
searched for every secret the traffic carried.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import stat
from pathlib import Path
from typing import Any

import aiohttp

from faults import sse
from proxy.recording import BinaryBody, RecordLine
from tests.conftest import ProxyProcess
from tests.proxy.recording_helpers import (
    REDACT,
    SECRETS,
    admin_call,
    files_under,
    metric,
    recording_lines,
    upstream_url,
    wait_state,
)

__all__ = ["upstream_url"]  # a fixture


def _config(upstream: str, record_dir: Path, **record: Any) -> dict[str, Any]:
    return {"record": {"dir": str(record_dir), "redact": REDACT, **record},
            "fault_ttl": {"default": "1m", "max": "10m"},
            "routes": [{"name": "api", "upstream": upstream}]}


def _events(raw: bytes) -> list[tuple[str | None, str | None, Any]]:
    splitter = sse.EventSplitter()
    out = []
    for chunk in splitter.feed(raw):
        event = sse.parse(chunk)
        if event.data is not None:
            data: Any = event.data
            try:
                data = json.loads(data) if data[:1] in ("{", "[") else data
            except ValueError:
                pass  # text that starts with a bracket: [DONE]
            out.append((event.event, event.id, data))
    return out


async def _exchanges(proxy: ProxyProcess) -> list[tuple[str, bytes, int, dict[str, str], bytes]]:
    """A mix of exchanges a real client makes; what it sent and got, raw (no decompression)."""
    seen = []
    headers = {"Authorization": SECRETS["authorization"], "Cookie": SECRETS["cookie"], "X-Api-Key": SECRETS["x-api-key"],
               "X-Session": SECRETS["x-session"], "X-Request-Id": "req-1", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for n in range(3):
            body = json.dumps({"n": n, "customer": {"email": SECRETS["email"], "tier": "gold"}, "card": SECRETS["card"]})
            async with session.post(proxy.url("api", f"/predict?card={SECRETS['card']}&n={n}"), data=body.encode(),
                                    headers=headers) as r:
                seen.append((f"/predict?card={SECRETS['card']}&n={n}", body.encode(), r.status, dict(r.headers),
                             await r.read()))
        for path in ("/stream", "/bin", "/gz"):
            async with session.get(proxy.url("api", path), headers={"Authorization": SECRETS["authorization"]}) as r:
                seen.append((path, b"", r.status, dict(r.headers), await r.read()))
    return seen


def _body_bytes(body: Any) -> bytes:
    return body.data if isinstance(body, BinaryBody) else json.dumps(body).encode()


def _same_answer(line: RecordLine, status: int, headers: dict[str, str], raw: bytes) -> None:
    response = line.response
    assert response is not None and response.status == status
    got = {k.lower(): v for k, v in headers.items()}
    for name, value in response.headers:
        if value != "[REDACTED]":
            assert got[name.lower()] == value, name  # a header the client got, as it got it
    if got.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
        assert not any(n.lower() == "content-encoding" for n, _ in response.headers)
    if got.get("content-type", "").startswith("text/event-stream"):
        recorded = [(e.event, e.id, e.data) for e in response.events or ()]
        client = [(name, eid, data.replace(SECRETS["card"], "[REDACTED]") if isinstance(data, str) else data)
                  for name, eid, data in _events(raw)]
        assert recorded == client
    elif isinstance(response.body, BinaryBody):
        assert response.body.data == raw
    else:
        expected = json.loads(raw)
        if isinstance(expected.get("customer"), dict):
            expected["customer"]["email"] = "[REDACTED]"
        assert response.body == expected


async def test_recorded_lines_are_the_exchanges_the_client_saw_and_hold_no_secret(
        proxy_factory: Any, upstream_url: str, tmp_path: Path) -> None:
    record_dir = tmp_path / "recordings"
    proxy = proxy_factory(_config(upstream_url, record_dir))
    status, rec = await admin_call(proxy, "POST", "/recordings", {"route": "api", "duration": "1m"})
    assert status == 201 and rec["state"] == "recording" and rec["route"] == "api"
    seen = await _exchanges(proxy)
    lines = await recording_lines(proxy, rec["id"])

    assert len(lines) == len(seen)
    by_path = {line.path: line for line in lines}
    for path, sent, status, headers, raw in seen:
        line = by_path[path.replace(SECRETS["card"], "[REDACTED]")]
        assert line.method == ("POST" if sent else "GET")
        if sent:
            request = json.loads(sent)
            request["customer"]["email"] = "[REDACTED]"
            request["card"] = "[REDACTED]"
            assert line.body == request
            assert dict(line.headers)["X-Request-Id"] == "req-1"
            for name in ("Authorization", "Cookie", "X-Api-Key", "X-Session"):
                assert dict(line.headers)[name] == "[REDACTED]"  # kept by name, never by value
        _same_answer(line, status, headers, raw)
        assert line.response is not None and line.response.latency_ms is not None and line.ts is not None
    assert by_path["/stream"].response is not None and by_path["/stream"].response.events
    assert isinstance(by_path["/bin"].response.body, BinaryBody)  # type: ignore[union-attr]

    files = files_under(record_dir)
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    everything = b"".join(f.read_bytes() for f in files)
    for secret in SECRETS.values():
        for form in {secret, secret.split("=", 1)[-1].split(";")[0], base64.b64encode(secret.encode()).decode()}:
            assert form.encode() not in everything, form
    assert await metric(proxy, "brownout_recording_lines_total", route="api") == len(seen)


async def test_a_recording_ends_at_its_duration_at_its_lease_and_on_the_kill_switch(
        proxy_factory: Any, upstream_url: str, tmp_path: Path) -> None:
    config = _config(upstream_url, tmp_path / "rec")
    config["routes"].append({"name": "always", "upstream": upstream_url, "record": {"sample": 1.0}})
    proxy = proxy_factory(config)
    _, by_duration = await admin_call(proxy, "POST", "/recordings", {"route": "api", "duration": "1s"})
    _, by_lease = await admin_call(proxy, "POST", "/recordings", {"route": "api", "duration": "5m", "ttl": "1s"})
    _, renewed = await admin_call(proxy, "POST", "/recordings", {"route": "api", "duration": "5m", "ttl": "3s"})
    _, killed = await admin_call(proxy, "POST", "/recordings", {"route": "api", "duration": "5m"})
    for _ in range(3):  # renewed well within its lease: it outlives the one never renewed
        await asyncio.sleep(0.5)
        status, _ = await admin_call(proxy, "PATCH", f"/recordings/{renewed['id']}", {"ttl": "3s"})
        assert status == 200
    ended = await wait_state(proxy, by_duration["id"], "ended")
    assert ended["end_reason"] == "duration"
    lease = await wait_state(proxy, by_lease["id"], "ended")
    assert lease["end_reason"] == "lease"
    status, still = await admin_call(proxy, "GET", f"/recordings/{renewed['id']}")
    assert still["state"] == "recording"

    _, listed = await admin_call(proxy, "GET", "/recordings")
    static = next(r for r in listed if r["static"])
    assert static["route"] == "always" and static["state"] == "recording" and static["expires_at"] is None
    status, cleared = await admin_call(proxy, "DELETE", "/faults")
    assert status == 200 and set(cleared["recordings_ended"]) == {renewed["id"], killed["id"], static["id"]}
    for rid in (killed["id"], static["id"], renewed["id"]):
        rec = await wait_state(proxy, rid, "ended", timeout=0.1)
        assert rec["state"] == "ended" and rec["end_reason"] == "kill_switch"
    # An ended recording records nothing more, and keeps what it had.
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.url("always", "/slow?s=0")) as r:
            assert r.status == 200
    assert await recording_lines(proxy, static["id"]) == []
    status, error = await admin_call(proxy, "PATCH", f"/recordings/{killed['id']}", {"ttl": "10s"})
    assert status == 409 and "ended" in error["error"]


async def test_patch_end_keeps_the_data_and_delete_removes_the_files(
        proxy_factory: Any, upstream_url: str, tmp_path: Path) -> None:
    record_dir = tmp_path / "rec"
    proxy = proxy_factory(_config(upstream_url, record_dir))
    _, rec = await admin_call(proxy, "POST", "/recordings", {"route": "api", "sample": 1.0})
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            async with session.get(proxy.url("api", "/slow?s=0")) as r:
                await r.read()
    status, ended = await admin_call(proxy, "PATCH", f"/recordings/{rec['id']}", {"end": True})
    assert status == 200 and ended["end_reason"] == "stopped"
    assert len(await recording_lines(proxy, rec["id"])) == 4
    assert files_under(record_dir)
    status, _ = await admin_call(proxy, "DELETE", f"/recordings/{rec['id']}")
    assert status == 200 and files_under(record_dir) == []
    status, missing = await admin_call(proxy, "GET", f"/recordings/{rec['id']}/data")
    assert status == 404 and missing["field"] is None


async def test_bad_requests_name_the_field_and_recording_needs_a_record_dir(
        proxy_factory: Any, upstream_url: str, tmp_path: Path) -> None:
    proxy = proxy_factory(_config(upstream_url, tmp_path / "rec"))
    for body, field in (({"route": "nope"}, "route"), ({"route": "api", "sample": 0}, "sample"),
                        ({"route": "api", "duration": "1h"}, "duration"),
                        ({"route": "api", "redact": {"patterns": ["("]}}, "redact.patterns[0]"),
                        ({"route": "api", "path": "/etc"}, "path")):
        status, error = await admin_call(proxy, "POST", "/recordings", body)
        assert status == 400 and error["field"] == field, (body, error)
    off = proxy_factory({"routes": [{"name": "api", "upstream": upstream_url}]})
    status, error = await admin_call(off, "POST", "/recordings", {"route": "api"})
    assert status == 409 and "record.dir" in error["error"]


async def test_segments_rotate_and_the_folder_cap_deletes_the_oldest(
        proxy_factory: Any, upstream_url: str, tmp_path: Path) -> None:
    record_dir = tmp_path / "rec"
    (record_dir).mkdir()
    (record_dir / "rec-old-1.0001.jsonl").write_text("{}\n" * 1000)  # an earlier run's file counts too
    proxy = proxy_factory(_config(upstream_url, record_dir, max_file_bytes="2KiB", max_bytes="8KiB"))
    _, rec = await admin_call(proxy, "POST", "/recordings", {"route": "api"})
    async with aiohttp.ClientSession() as session:
        for i in range(40):
            async with session.get(proxy.url("api", f"/slow?s=0&i={i}")) as r:
                await r.read()
    lines = await recording_lines(proxy, rec["id"])
    _, rec = await admin_call(proxy, "GET", f"/recordings/{rec['id']}")
    files = files_under(record_dir)
    assert not (record_dir / "rec-old-1.0001.jsonl").exists()
    assert all(f.stat().st_size <= 2048 for f in files) and sum(f.stat().st_size for f in files) <= 8192
    assert rec["deleted_segments"] > 0 and rec["lines"] == 40
    assert len(lines) == 40 - rec["deleted_lines"] and rec["segments"] == len(files)
    # what is left is the latest traffic, in order
    assert [line.path for line in lines] == [f"/slow?s=0&i={i}" for i in range(40 - len(lines), 40)]
