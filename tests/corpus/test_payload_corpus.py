"""A recording is a payload corpus as it is: ``load.payloads`` / ``brownout load --payloads``."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from brownout.cli import main
from brownout.load.client import parse_target
from brownout.load.payloads import PayloadSource, load_corpus
from faults.errors import InvalidInput
from tests.conftest import BROWNOUT, serve_app

HAR = Path(__file__).parent / "fixtures" / "mitmproxy.har"


def _recording(tmp_path: Path) -> Path:
    out = tmp_path / "recording.jsonl"
    assert main(["corpus", "import", str(HAR), "--out", str(out), "--redact-pattern", r"\b\d{16}\b"]) == 0
    return out


def _split(wire: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], [tuple(line.split(": ", 1)) for line in lines[1:]], body  # type: ignore[misc]


def test_recording_lines_load_as_a_corpus_and_frame_anew(tmp_path: Path) -> None:
    recording = _recording(tmp_path)
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert all({"ts", "faults", "response"} <= set(doc) for doc in lines)
    templates = load_corpus(recording)
    assert len(templates) == len(lines)
    target = parse_target("http://127.0.0.1:9999/ignored")
    for template, doc in zip(templates, lines, strict=True):
        wire = PayloadSource((template,)).encoder(target)(0)[0]
        request_line, headers, body = _split(wire)
        names = [n.lower() for n, _ in headers]
        assert request_line == f"{doc['method']} {doc['path']} HTTP/1.1"
        assert names.count("host") == 1 and dict(headers)["Host"] == "127.0.0.1:9999"  # the recorded Host is dropped
        assert names.count("user-agent") == 1 and dict(headers)["User-Agent"] == "fixture/1"
        assert names.count("content-length") <= 1
        if "body_base64" in doc:
            assert body == base64.b64decode(doc["body_base64"])
            assert dict(headers)["Content-Type"] == doc["content_type"]
        elif doc["body"] is not None:
            assert json.loads(body) == doc["body"]
        if body:
            assert int(dict(headers)["Content-Length"]) == len(body)


async def test_brownout_load_replays_a_recording_against_a_real_server(tmp_path: Path) -> None:
    recording = _recording(tmp_path)
    recorded: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for doc in map(json.loads, recording.read_text().splitlines()):
        recorded.setdefault((doc["method"], doc["path"]), []).append(doc)
    seen: list[tuple[str, str, bytes, dict[str, str]]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.method, request.raw_path, await request.read(), dict(request.headers)))
        return web.json_response({"score": 0.5})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, url = await serve_app(app)
    try:
        proc = await asyncio.create_subprocess_exec(
            *BROWNOUT, "load", f"{url}/", "--payloads", str(recording), "--rate", "40", "--duration", "1s", "--seed", "3",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    assert proc.returncode == 0, err.decode()
    assert len(seen) == 40 and len({(m, p) for m, p, _, _ in seen}) >= 4  # seeded sampling over the corpus
    for method, path, body, headers in seen:
        sent = [base64.b64decode(d["body_base64"]) if "body_base64" in d else d["body"] for d in recorded[(method, path)]]
        assert (body if isinstance(sent[0], bytes) else json.loads(body) if body else None) in sent
        assert headers.get("Authorization") in (None, "[REDACTED]")  # what was recorded, redacted


def test_binary_bodies_are_sent_byte_for_byte_and_bad_ones_named(tmp_path: Path) -> None:
    raw = b"\x00\xff{{seq}}\xfe"  # not UTF-8, and placeholders in bytes are not templated
    path = tmp_path / "rec.jsonl"
    path.write_text(json.dumps({"method": "PUT", "path": "/blob", "headers": {"Content-Length": "3"},
                                "body_base64": base64.b64encode(raw).decode(), "content_type": "application/x-thing",
                                "ts": 1.0, "faults": ["f"], "response": {"status": 200}}) + "\n")
    wire = PayloadSource(load_corpus(path)).encoder(parse_target("http://127.0.0.1:1/"))(5)[0]
    request_line, headers, body = _split(wire)
    assert request_line == "PUT /blob HTTP/1.1" and body == raw
    assert dict(headers)["Content-Type"] == "application/x-thing" and dict(headers)["Content-Length"] == str(len(raw))
    path.write_text('{"body": null}\n{"body_base64": "***"}\n')
    with pytest.raises(InvalidInput) as err:
        load_corpus(path)
    assert str(err.value).startswith(f"{path}:2: payloads.body_base64: not base64")
    path.write_text('{"body": null, "extra": 1}\n')
    with pytest.raises(InvalidInput, match="unknown keys"):
        load_corpus(path)
