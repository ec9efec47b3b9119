"""The recording line format: body forms, round trips, strict decoding with named fields."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path

import pytest

from faults.errors import InvalidInput
from proxy.recording import (
    BinaryBody, Event, Exchange, RawResponse, RecordedResponse, RecordLine, Redaction, Skip, encode, parse_line,
    read_lines, record,
)

JSON = ("Content-Type", "application/json")


def _line(exchange: Exchange, **kw: object) -> dict:
    text = encode(exchange, **kw)  # type: ignore[arg-type]
    assert isinstance(text, str), text
    assert "\n" not in text
    return json.loads(text)


def test_model_round_trips_through_its_line() -> None:
    line = RecordLine(
        "POST", "/predict?v=2", (("Content-Type", "application/json"), ("X-Tenant", "t1")), {"amount": 12.5, "ok": True},
        1714000000.123456, ("slow-features",),
        RecordedResponse(200, (("Content-Type", "text/event-stream"),), None,
                         (Event({"score": 0.5}), Event("[DONE]", "done", "7")), 12.345),
    )
    again = parse_line(line.to_json())
    assert again == line
    binary = RecordLine("PUT", "/blob", (), BinaryBody(b"\x00\xffraw", "application/x-thing"), None, (),
                        RecordedResponse(204, (), None, None, None))
    assert parse_line(binary.to_json()) == binary
    doc = json.loads(binary.to_json())
    assert doc["body_base64"] == base64.b64encode(b"\x00\xffraw").decode() and doc["content_type"] == "application/x-thing"
    assert "body" not in doc and doc["response"] == {"status": 204, "headers": {}, "body": None}


def test_exchange_to_line_and_back_keeps_what_the_client_saw() -> None:
    request = {"customer": {"id": "C1"}, "amount": 1.5, "items": [1, 2]}
    answer = {"score": 0.125, "model": "v3"}
    exchange = Exchange(
        "post", "/predict?x=1", [("Host", "m:80"), JSON, ("Content-Length", "99"), ("Connection", "keep-alive")],
        json.dumps(request, indent=2).encode(), 1714000000.5, ["f-1"],
        RawResponse(200, [JSON, ("Transfer-Encoding", "chunked"), ("X-A", "1"), ("x-a", "2")], json.dumps(answer).encode(), 3.25),
    )
    doc = _line(exchange)
    assert list(doc) == ["method", "path", "headers", "body", "ts", "faults", "response"]
    assert doc["method"] == "POST" and doc["path"] == "/predict?x=1"
    assert doc["headers"] == {"Host": "m:80", "Content-Type": "application/json"}  # framing is not recorded
    assert doc["body"] == request and doc["ts"] == 1714000000.5 and doc["faults"] == ["f-1"]
    assert doc["response"] == {"status": 200, "headers": {"Content-Type": "application/json", "X-A": "1, 2"},
                               "body": answer, "latency_ms": 3.25}
    parsed = parse_line(json.dumps(doc))
    assert parsed.body_bytes() is not None and json.loads(parsed.body_bytes()) == request  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "ctype"), [
    (b"plain text", "text/plain"),
    (b'"a bare JSON string"', "application/json"),  # kept as bytes: "body" holds documents only
    (b"null", "application/json"),
    (b'{"score": NaN}', "application/json"),  # lenient JSON is not JSON: kept byte for byte
    (b"\x89PNG\r\n\x1a\n\x00", "image/png"),
    (b'{"a": 1e400}', "application/json"),  # beyond float range: bytes, not an infinity
    (b"{not json", None),
])
def test_bodies_that_are_not_json_documents_are_kept_byte_for_byte(raw: bytes, ctype: str | None) -> None:
    headers = [("Content-Type", ctype)] if ctype else []
    doc = _line(Exchange("POST", "/x", headers, raw))
    assert "body" not in doc
    assert base64.b64decode(doc["body_base64"]) == raw
    assert doc["content_type"] == (ctype or "application/octet-stream")
    assert parse_line(json.dumps(doc)).body == BinaryBody(raw, ctype or "application/octet-stream")


def test_empty_body_is_null_and_json_scalars_are_documents() -> None:
    assert _line(Exchange("GET", "/"))["body"] is None
    assert _line(Exchange("POST", "/", [JSON], b"42"))["body"] == 42
    assert _line(Exchange("POST", "/", [JSON], b"[1, 2]"))["body"] == [1, 2]


def test_sse_answers_become_events() -> None:
    stream = (b": keep-alive\n\ndata: {\"token\": \"a\"}\n\nevent: progress\nid: 3\ndata: half\ndata: way\n\n"
              b"data: [DONE]\r\n\r\ndata: {\"cut\": true}")  # the last event has no blank line: the stream was cut
    doc = _line(Exchange("GET", "/s", [], b"", None, (), RawResponse(200, [("Content-Type", "text/event-stream; charset=utf-8")], stream)))
    assert doc["response"]["events"] == [
        {"data": {"token": "a"}}, {"event": "progress", "id": "3", "data": "half\nway"}, {"data": "[DONE]"}, {"data": {"cut": True}},
    ]
    assert "body" not in doc["response"]


def test_compressed_bodies_are_decoded_and_unknown_codings_kept_or_skipped() -> None:
    answer = b'{"score": 0.5}'
    gz = RawResponse(200, [JSON, ("Content-Encoding", "gzip")], gzip.compress(answer))
    doc = _line(Exchange("GET", "/", [], b"", None, (), gz))
    assert doc["response"]["body"] == {"score": 0.5} and "Content-Encoding" not in doc["response"]["headers"]
    deflate = RawResponse(200, [JSON, ("Content-Encoding", "deflate")], zlib.compress(answer))
    assert _line(Exchange("GET", "/", [], b"", None, (), deflate))["response"]["body"] == {"score": 0.5}
    br = RawResponse(200, [JSON, ("Content-Encoding", "br")], b"\x0b\x02\x80opaque")
    kept = _line(Exchange("GET", "/", [], b"", None, (), br))
    assert kept["response"]["headers"]["Content-Encoding"] == "br"
    assert base64.b64decode(kept["response"]["body_base64"]) == b"\x0b\x02\x80opaque"
    # A body redaction cannot look into is not written at all when redaction looks into bodies.
    looking = Redaction.parse({"patterns": [r"secret"]})
    assert encode(Exchange("GET", "/", [], b"", None, (), br), looking) is Skip.UNREDACTABLE
    broken = RawResponse(200, [("Content-Encoding", "gzip")], b"not gzip at all")
    assert encode(Exchange("GET", "/", [], b"", None, (), broken), looking) is Skip.UNREDACTABLE


def test_bodies_above_max_body_are_skipped_even_when_they_only_decompress_large() -> None:
    assert encode(Exchange("POST", "/", [], b"x" * 101), max_body=100) is Skip.TOO_LARGE
    assert isinstance(encode(Exchange("POST", "/", [], b"x" * 100), max_body=100), str)
    bomb = RawResponse(200, [("Content-Encoding", "gzip")], gzip.compress(b"0" * 1_000_000))
    assert len(bomb.body) < 2000
    assert encode(Exchange("GET", "/", [], b"", None, (), bomb), max_body=64 * 1024) is Skip.TOO_LARGE
    assert record(Exchange("GET", "/", [], b"", None, (), bomb), max_body=2_000_000) is not Skip.TOO_LARGE


def test_plain_corpus_lines_decode_too() -> None:
    line = parse_line('{"body": {"amount": 1}}')
    assert line == RecordLine("POST", None, (), {"amount": 1})
    text = parse_line('{"body": "a=1&b=2", "path": "/form", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}')
    assert text.body == BinaryBody(b"a=1&b=2", "application/x-www-form-urlencoded")
    assert parse_line('{"body": null}').method == "GET"


@pytest.mark.parametrize(("text", "field", "message"), [
    ('{"method": "POST"}', "body", "required"),
    ('{"body": null, "method": "P O"}', "method", "not an HTTP method"),
    ('{"body": null, "path": "predict"}', "path", "must start with /"),
    ('{"body": null, "headers": {"A": 1}}', "headers", "must be a string"),
    ('{"body": null, "ts": "yesterday"}', "ts", "Unix seconds"),
    ('{"body": null, "faults": "f1"}', "faults", "list of fault ids"),
    ('{"body": null, "colour": 1}', "colour", "unknown keys"),
    ('{"body_base64": "***", "content_type": "a/b"}', "body_base64", "not base64"),
    ('{"body": {}, "body_base64": ""}', "body_base64", "not both"),
    ('{"body": {}, "content_type": "a/b"}', "content_type", "only with body_base64"),
    ('{"body": null, "response": {"status": 42}}', "response.status", "HTTP status"),
    ('{"body": null, "response": {"status": 200, "latency_ms": -1}}', "response.latency_ms", ">= 0"),
    ('{"body": null, "response": {"status": 200, "events": {}}}', "response.events", "list of events"),
    ('{"body": null, "response": {"status": 200, "events": [{"event": "x"}]}}', "response.events[0].data", "required"),
    ('{"body": null, "response": {"status": 200, "events": [], "body": null}}', "response.events", "not both"),
    ('{"body": null, "response": {"status": 200, "body_base64": "@@"}}', "response.body_base64", "not base64"),
    ('{"body": null, "response": {"status": 200, "trailer": 1}}', "response.trailer", "unknown keys"),
    ('[1]', None, "JSON object"),
])
def test_bad_lines_name_the_field(text: str, field: str | None, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_line(text, source="rec.jsonl", line=7)
    assert err.value.field == field and message in err.value.message
    assert str(err.value).startswith("rec.jsonl:7: ")


def test_read_lines_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text('{"body": null, "path": "/a"}\n\n{"body": null, "path": "/b"}\n{"body": null, "response": {"status": "ok"}}\n')
    seen = []
    with pytest.raises(InvalidInput) as err:
        for lineno, line in read_lines(path):
            seen.append((lineno, line.path))
    assert seen == [(1, "/a"), (3, "/b")]
    assert str(err.value) == f"{path}:4: response.status: must be an HTTP status (100-599), got 'ok'"
    path.write_text("{oops\n")
    with pytest.raises(InvalidInput, match=r"rec.jsonl:1: not JSON"):
        list(read_lines(path))
