"""Corpus loading (JSONL, CSV), seeded sampling, templating and edge-case bodies."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from brownout.load.client import parse_target
from brownout.load.edgecases import EDGE_CASES, EdgeCaseMix, mutate, parse_edge_cases
from brownout.load.payloads import PayloadSource, load_corpus
from faults.errors import InvalidInput, InvalidInputs

TARGET = parse_target("http://127.0.0.1:8080/predict?v=1")


def _split(wire: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def _corpus(tmp_path: Path, lines: list[object], name: str = "c.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_jsonl_corpus_encodes_real_requests(tmp_path: Path) -> None:
    path = _corpus(tmp_path, [
        {"body": {"amount": 12.5, "merchant": "acme"}},
        {"body": {"q": 1}, "method": "PUT", "path": "/other", "headers": {"X-Tenant": "t1"}},
    ])
    templates = load_corpus(path)
    encode = PayloadSource(templates, seed=3).encoder(TARGET)
    seen = {}
    for seq in range(50):
        wire, edge = encode(seq)
        assert edge is None
        line, headers, body = _split(wire)
        seen[line] = (headers, body)
        assert headers["Host"] == "127.0.0.1:8080" and int(headers["Content-Length"]) == len(body)
    assert set(seen) == {"POST /predict?v=1 HTTP/1.1", "PUT /other HTTP/1.1"}
    assert json.loads(seen["POST /predict?v=1 HTTP/1.1"][1]) == {"amount": 12.5, "merchant": "acme"}
    assert seen["PUT /other HTTP/1.1"][0]["X-Tenant"] == "t1"
    assert seen["PUT /other HTTP/1.1"][0]["Content-Type"] == "application/json"


def test_sampling_is_seeded(tmp_path: Path) -> None:
    templates = load_corpus(_corpus(tmp_path, [{"body": {"i": i}} for i in range(20)]))
    def draw(seed: int) -> list[tuple[bytes, str | None]]:
        encode = PayloadSource(templates, seed=seed).encoder(TARGET)
        return [encode(i) for i in range(100)]

    a, b, c = draw(7), draw(7), draw(8)
    assert a == b and a != c
    assert len({w for w, _ in a}) > 10  # it does sample across the corpus


def test_templating_ids_sequence_and_time(tmp_path: Path) -> None:
    path = _corpus(tmp_path, [{"body": {"id": "{{uuid}}", "n": "{{seq}}", "at": "{{now}}", "iso": "{{now_iso}}",
                                        "label": "req-{{seq}}"}, "path": "/items/{{seq}}"}])
    encode = PayloadSource(load_corpus(path), seed=1).encoder(TARGET)
    line, _, body = _split(encode(41)[0])
    assert line == "POST /items/41 HTTP/1.1"
    obj = json.loads(body)
    assert obj["n"] == 41 and obj["label"] == "req-41"  # a whole "{{seq}}" becomes a number
    assert re.fullmatch(r"[0-9a-f-]{36}", obj["id"]) and obj["id"][14] == "4"
    assert isinstance(obj["at"], float) and obj["iso"].endswith("+00:00")
    again = PayloadSource(load_corpus(path), seed=1).encoder(TARGET)
    assert json.loads(_split(again(41)[0])[2])["id"] == obj["id"]  # seeded uuids


def test_csv_corpus_with_and_without_a_body_column(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text('method,path,headers,body\nPOST,/a,"{""X-A"": ""1""}","{""k"": 1}"\nGET,/b,,\n')
    templates = load_corpus(raw)
    assert [t.method for t in templates] == ["POST", "GET"]
    assert templates[0].headers == (("X-A", "1"),) and templates[1].body is None
    fields = tmp_path / "fields.csv"
    fields.write_text("amount,merchant\n12.5,acme\n3,zeta\n")
    encode = PayloadSource(load_corpus(fields), seed=0).encoder(TARGET)
    bodies = {_split(encode(i)[0])[2] for i in range(30)}
    assert {json.dumps(json.loads(b), sort_keys=True) for b in bodies} == {
        '{"amount": 12.5, "merchant": "acme"}', '{"amount": 3, "merchant": "zeta"}'}


def test_corpus_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"body": {}}\n{"method": "POST"}\n')
    with pytest.raises(InvalidInput) as info:
        load_corpus(path)
    assert info.value.line == 2 and info.value.field == "payloads.body" and str(path) in str(info.value)
    path.write_text('{"body": {}, "path": "no-slash"}\n')
    with pytest.raises(InvalidInput, match="must start with /"):
        load_corpus(path)
    path.write_text('{"body": "{{nope}}"}\n')
    with pytest.raises(InvalidInput, match="unknown placeholder"):
        load_corpus(path)
    path.write_text("not json\n")
    with pytest.raises(InvalidInput, match="not JSON"):
        load_corpus(path)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_corpus(tmp_path / "missing.jsonl")


def test_edge_case_bodies() -> None:
    rng = random.Random(0)
    base = json.dumps({"amount": 12.5, "merchant": "acme", "tags": ["a"]}).encode()
    with pytest.raises(ValueError):
        json.loads(mutate("malformed_json", base, rng, 100))
    assert mutate("empty_body", base, rng, 100) == b""
    assert len(mutate("oversized", base, rng, 5000)) >= 4900
    missing = json.loads(mutate("missing_field", base, rng, 100))
    assert len(missing) == 2
    wrong = json.loads(mutate("wrong_type", base, rng, 100))
    changed = [k for k in wrong if type(wrong[k]) is not type(json.loads(base)[k])]
    assert len(changed) == 1
    nan = json.loads(mutate("nan_infinity", base, rng, 100))
    assert not math.isfinite(nan["amount"])
    uni = json.loads(mutate("unicode", base, rng, 100).decode("utf-8"))
    assert "🦊" in uni["merchant"]


def test_edge_case_mix_ratios_and_expectations() -> None:
    mix = parse_edge_cases({"malformed_json": 0.1, "unicode": {"ratio": 0.05, "expect": "2xx"},
                            "oversized": {"ratio": 0.01, "bytes": 4096}})
    assert mix.oversized_bytes == 4096
    assert mix.spec("unicode").expect == frozenset({"2xx"})  # type: ignore[union-attr]
    assert mix.spec("malformed_json").expect == frozenset({"4xx"})  # type: ignore[union-attr]
    assert mix.total_ratio == pytest.approx(0.16)
    encode = PayloadSource((), mix, seed=5).encoder(TARGET)
    names = [encode(i)[1] for i in range(20_000)]
    assert names.count("malformed_json") == pytest.approx(2000, rel=0.1)
    assert names.count("unicode") == pytest.approx(1000, rel=0.15)
    assert names.count(None) == pytest.approx(16_800, rel=0.05)


def test_edge_case_config_errors() -> None:
    with pytest.raises(InvalidInputs) as info:
        parse_edge_cases({"sql_injection": 0.1, "oversized": 2, "unicode": {"ratio": 0.1, "expect": "ok"}})
    assert {e.field for e in info.value.errors} == {
        "load.edge_cases.sql_injection", "load.edge_cases.oversized", "load.edge_cases.unicode.expect"}
    with pytest.raises(InvalidInput, match="more than 1"):
        parse_edge_cases(dict.fromkeys(EDGE_CASES, 0.2))
    assert parse_edge_cases(None) == EdgeCaseMix()
