"""``brownout corpus import``: a HAR written by mitmproxy's hardump and a GoReplay .gor file.

The fixtures come from real exchanges (tests/corpus/fixtures/make_fixtures.py made them).
"""

from __future__ import annotations

import base64
import json
import shutil
import stat
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from brownout.cli import main
from tests.conftest import BROWNOUT

FIXTURES = Path(__file__).parent / "fixtures"
HAR = FIXTURES / "mitmproxy.har"
GOR = FIXTURES / "goreplay.gor"
# The secrets make_fixtures.py put into the traffic (its SECRETS).
SECRETS = ("sk-live-4f9c2a7e1b", "session=ab12cd34", "ab12cd34", "key-7f7f7f", "jane.doe@example.com",
           "4111111111111111", "SERVER-SECRET-COOKIE")
REDACT = ["--redact-json-path", "$.customer.email", "--redact-pattern", r"\b\d{16}\b",
          "--redact-pattern", r"[\w.+-]+@[\w-]+\.[\w.]+"]
PATHS = ["/predict", "/predict", "/predict", "/items?q=shoes&card=[REDACTED]", "/notes", "/stream", "/fail"]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_no_secret(out: Path) -> None:
    text = out.read_text()
    decoded = []
    for doc in _lines(out):  # base64 bodies hide nothing either
        for part in (doc, doc.get("response") or {}):
            if "body_base64" in part:
                decoded.append(base64.b64decode(part["body_base64"]).decode("utf-8", "replace"))
    for secret in SECRETS:
        assert secret not in text, secret
        assert all(secret not in body for body in decoded), secret
    assert "[REDACTED]" in text


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_har_from_mitmproxy_imports_redacted(tmp_path: Path) -> None:
    raw = json.loads(HAR.read_text())
    assert raw["log"]["creator"]["name"] == "mitmproxy"  # the fixture is what hardump wrote
    out = tmp_path / "corpus.jsonl"
    done = subprocess.run([*BROWNOUT, "corpus", "import", str(HAR), "--out", str(out), *REDACT],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "wrote 7 exchanges (7 with a response)" in done.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    _assert_no_secret(out)
    lines = _lines(out)
    assert [d["path"] for d in lines] == PATHS
    assert [d["response"]["status"] for d in lines] == [200, 200, 200, 200, 200, 200, 503]
    entries = raw["log"]["entries"]
    for doc, entry in zip(lines, entries, strict=True):
        assert doc["ts"] == pytest.approx(datetime.fromisoformat(entry["startedDateTime"]).timestamp(), abs=1e-6)
        assert doc["response"]["latency_ms"] == pytest.approx(entry["time"], abs=1e-3)
        assert doc["faults"] == []
        assert doc["headers"].get("Authorization", "[REDACTED]") == "[REDACTED]"
    first = lines[0]
    assert first["body"] == {"customer": {"email": "[REDACTED]", "id": "C042"}, "amount": 123.45, "card": "[REDACTED]"}
    assert first["response"]["body"] == {"score": 0.12345, "model": "fraud-v3", "customer": {"email": "[REDACTED]"}}
    assert first["response"]["headers"]["Set-Cookie"] == "[REDACTED]"
    assert "Content-Length" not in first["headers"] and "Connection" not in first["headers"]
    notes = lines[4]
    assert base64.b64decode(notes["body_base64"]) == b"call [REDACTED] about card [REDACTED]"
    assert notes["content_type"] == "text/plain; charset=utf-8"
    assert lines[5]["response"]["events"] == [{"data": {"token": "hel", "email": "[REDACTED]"}},
                                             {"event": "done", "data": "[DONE]"}]


def test_gor_import_pairs_responses_dechunks_and_matches_the_har(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gor.jsonl"
    code, stdout, err = _run(["corpus", "import", str(GOR), "--out", str(out), *REDACT], capsys)
    assert code == 0, err
    assert "wrote 7 exchanges (7 with a response)" in stdout
    assert "left out 1: replayed responses (type 3) ignored" in stdout
    _assert_no_secret(out)
    gor = _lines(out)
    assert [d["path"] for d in gor] == PATHS
    # Timestamps and latencies come from the payload headers (ns).
    headers = [line.split(" ") for line in GOR.read_text().splitlines() if line[:2] in ("1 ", "2 ")]
    starts = [int(h[2]) / 1e9 for h in headers if h[0] == "1"]
    latencies = [int(h[3]) / 1e6 for h in headers if h[0] == "2"]
    assert [d["ts"] for d in gor] == pytest.approx(starts, abs=1e-6)
    assert [d["response"]["latency_ms"] for d in gor] == pytest.approx(latencies, abs=1e-3)
    assert "Transfer-Encoding: chunked" in GOR.read_text()  # the /stream answer was chunked on the wire
    # The same requests went through mitmproxy for the HAR: both imports hold the same exchanges.
    har_out = tmp_path / "har.jsonl"
    assert _run(["corpus", "import", str(HAR), "--out", str(har_out), *REDACT], capsys)[0] == 0
    for g, h in zip(gor, _lines(har_out), strict=True):
        for key in ("method", "path", "body", "body_base64"):
            assert g.get(key) == h.get(key)
        for key in ("status", "body", "body_base64", "events"):
            assert g["response"].get(key) == h["response"].get(key)
        assert {k: v for k, v in g["headers"].items() if k != "Host"} == {k: v for k, v in h["headers"].items() if k != "Host"}


def test_format_from_content_when_the_extension_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    har, gor = tmp_path / "capture.json", tmp_path / "capture.bin"
    shutil.copy(HAR, har)
    shutil.copy(GOR, gor)
    assert _run(["corpus", "import", str(har), "--out", str(tmp_path / "a.jsonl")], capsys)[0] == 0
    assert _run(["corpus", "import", str(gor), "--out", str(tmp_path / "b.jsonl")], capsys)[0] == 0
    odd = tmp_path / "x.txt"
    odd.write_text("hello")
    code, _, err = _run(["corpus", "import", str(odd), "--out", str(tmp_path / "c.jsonl")], capsys)
    assert code == 3 and "--format: cannot tell the format" in err


def _bad_har(tmp_path: Path, change: Any) -> Path:
    doc = json.loads(HAR.read_text())
    change(doc["log"]["entries"])
    path = tmp_path / "bad.har"
    path.write_text(json.dumps(doc))
    return path


def _set(entry: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        entry = entry[part]
    entry[last] = value


@pytest.mark.parametrize(("index", "dotted", "value", "field", "message"), [
    (3, "request.postData", {"mimeType": "text/plain", "text": "!!!", "encoding": "base64"},
     "log.entries[3].request.postData.text", "not base64"),
    (2, "request.url", 42, "log.entries[2].request.url", "must be a string"),
    (5, "response.status", "200", "log.entries[5].response.status", "must be an HTTP status"),
    (0, "startedDateTime", "yesterday", "log.entries[0].startedDateTime", "not an ISO 8601 date-time"),
    (6, "response.content", {"text": "x", "encoding": "gzip"}, "log.entries[6].response.content.encoding", "unknown encoding"),
    (1, "request.headers", [{"name": "A"}], "log.entries[1].request.headers[0].value", "required"),
    (4, "request.method", "GE T", "log.entries[4].request.method", "not an HTTP method"),
])
def test_malformed_har_exits_3_naming_entry_and_field_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], index: int, dotted: str, value: Any, field: str, message: str,
) -> None:
    bad = _bad_har(tmp_path, lambda entries: _set(entries[index], dotted, value))
    out = tmp_path / "out" / "corpus.jsonl"
    out.parent.mkdir()
    code, stdout, err = _run(["corpus", "import", str(bad), "--out", str(out)], capsys)
    assert code == 3
    assert err.startswith(f"{bad}: {field}: ") and message in err, err
    assert list(out.parent.iterdir()) == []  # no corpus, no partial temporary file


def test_failed_import_keeps_an_existing_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "corpus.jsonl"
    out.write_text("previous\n")
    bad = tmp_path / "bad.har"
    bad.write_text('{"log": {"entries": [{"request": {}}]}}')
    code, _, err = _run(["corpus", "import", str(bad), "--out", str(out)], capsys)
    assert code == 3 and "log.entries[0].request.method: required" in err
    assert out.read_text() == "previous\n"
    bad.write_text('{"log": {"entries": [}')
    code, _, err = _run(["corpus", "import", str(bad), "--out", str(out)], capsys)
    assert code == 3 and err.startswith(f"{bad}:1:") and "not JSON" in err


def _gor(*payloads: bytes) -> bytes:
    return b"".join(p + "\n🐵🙈🙉\n".encode() for p in payloads)


REQ = b"1 aa 1700000000000000000\nPOST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
RESP = b"2 aa 1700000000000000000 2500000\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize(("data", "where", "message"), [
    (_gor(REQ, b"9 bb 1\nGET / HTTP/1.1\r\n\r\n"), ":8: payloads[1].header", "type 1, 2 or 3"),
    (_gor(REQ, b"1 bb soon\nGET / HTTP/1.1\r\n\r\n"), ":8: payloads[1].header", "must be integers"),
    (_gor(REQ, RESP.replace(b"Content-Length: 2", b"Content-Length: 20")), ":8: payloads[1].body", "Content-Length is 20 but 2 bytes follow"),
    (_gor(REQ, b"2 aa 1 1\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), ":8: payloads[1].body", "bad chunk size"),
    (_gor(REQ, b"2 aa 1 1\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"), ":8: payloads[1].body", "truncated"),
    (_gor(b"1 aa 1\nGET /p\r\n\r\n"), ":1: payloads[0].request_line", "METHOD /path HTTP/1.1"),
    (_gor(b"1 aa 1\nGET /p HTTP/1.1\r\nno colon here\r\n\r\n"), ":1: payloads[0].headers", "not a header line"),
    (_gor(REQ, b"2 aa 1 1\nHTTP/1.1 OK\r\n\r\n"), ":8: payloads[1].status_line", "HTTP/1.1 200 OK"),
    (_gor(REQ) + RESP, ":8: payloads[1]", "not followed by the"),
    (_gor(REQ, REQ), ":8: payloads[1].header", "a second request with id aa"),
])
def test_malformed_gor_exits_3_naming_payload_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, where: str, message: str,
) -> None:
    bad = tmp_path / "bad.gor"
    bad.write_bytes(data)
    out = tmp_path / "out.jsonl"
    code, _, err = _run(["corpus", "import", str(bad), "--out", str(out)], capsys)
    assert code == 3
    assert err.startswith(f"{bad}{where}: ") and message in err, err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.gor"]


def test_gor_requests_without_responses_and_chunked_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunked = (b"1 cc 1700000001000000000\nPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: application/json\r\n\r\n4\r\n{\"a\"\r\n4;ext=1\r\n: 1}\r\n0\r\n\r\n")
    orphan = b"2 zz 1 1\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    path = tmp_path / "mixed.gor"
    path.write_bytes(_gor(REQ, chunked, RESP, orphan))
    out = tmp_path / "out.jsonl"
    code, stdout, err = _run(["corpus", "import", str(path), "--out", str(out)], capsys)
    assert code == 0, err
    assert "wrote 2 exchanges (1 with a response)" in stdout and "left out 1: responses without their request" in stdout
    first, second = _lines(out)
    assert first["response"] == {"status": 200, "headers": {}, "body": {}, "latency_ms": 2.5}
    assert first["ts"] == 1700000000.0
    assert second["body"] == {"a": 1} and "response" not in second and second["ts"] == 1700000001.0


def test_bodies_above_max_body_are_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    code, stdout, err = _run(["corpus", "import", str(HAR), "--out", str(out), "--max-body", "60"], capsys)
    assert code == 0, err
    assert "skipped 4: too_large" in stdout  # the three /predict exchanges and the stream answer
    assert [d["path"] for d in _lines(out)] == ["/items?q=shoes&card=4111111111111111", "/notes", "/fail"]
    code, _, err = _run(["corpus", "import", str(HAR), "--out", str(out), "--max-body", "lots"], capsys)
    assert code == 3 and "--max-body: not a size" in err


def test_bad_redaction_flags_exit_3_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["corpus", "import", str(HAR), "--out", str(tmp_path / "o.jsonl"), "--redact-pattern", "(oops"], capsys)
    assert code == 3 and err.startswith("--redact-pattern: bad regular expression '(oops'")
    code, _, err = _run(["corpus", "import", str(HAR), "--out", str(tmp_path / "o.jsonl"), "--redact-json-path", "email"], capsys)
    assert code == 3 and err.startswith("--redact-json-path: ")
    assert not (tmp_path / "o.jsonl").exists()
