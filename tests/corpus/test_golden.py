"""``brownout corpus golden``: undisturbed, scored 2xx exchanges become a golden set."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from brownout.cli import main
from brownout.steady.golden import load_golden

HAR = Path(__file__).parent / "fixtures" / "mitmproxy.har"


def _x(body: Any = None, status: int = 200, answer: Any = None, **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"method": "POST", "path": "/predict", "headers": {"Content-Type": "application/json"},
                            "body": body, "ts": 1.0, "faults": []}
    line["response"] = {"status": status, "headers": {}, "body": answer, "latency_ms": 1.0}
    line.update(extra)
    return line


LINES = [
    _x({"a": 1}, answer={"score": 0.25}, headers={"X-Model": "v3", "Authorization": "[REDACTED]"}),  # kept
    _x({"a": 1}, answer={"score": 0.99}),                                           # duplicate of the first
    _x({"a": 2}, answer={"score": 0.5}, faults=["latency-1"]),                     # a fault applied
    _x({"a": 3}, status=503, answer={"error": "busy"}),                           # status not 2xx
    {k: v for k, v in _x({"a": 4}).items() if k != "response"},                     # no response recorded
    _x({"a": 5}, answer={"label": "fraud"}),                                        # score missing
    _x({"a": 6}, answer={"score": None}),                                           # score missing (null)
    _x({"a": 7}, response={"status": 200, "headers": {}, "body_base64": base64.b64encode(b'{"score": NaN}').decode(),
                           "content_type": "application/json"}),                   # score not finite (lenient JSON)
    _x({"a": 8}, response={"status": 200, "headers": {}, "body_base64": base64.b64encode(b"ok").decode(),
                           "content_type": "text/plain"}),                          # answer is not JSON
    _x({"a": 9}, response={"status": 200, "headers": {}, "events": [{"data": {"score": 1}}]}),  # event stream
    _x(None, answer={"score": 0.1}, body_base64=base64.b64encode(b"a=1").decode(), content_type="text/plain"),
    _x({"a": 11}, answer={"score": 0.1}, path="/predict?v=2"),                    # kept: with its query
    _x({"a": 1}, answer={"score": 0.3}, path="/v2/predict"),                       # kept: another path
    _x({"a": 1}, answer={"score": 0.3}, method="PUT"),                             # kept: another method
    _x({"b": [1, 2]}, status=201, answer={"score": "high"}),                        # kept: a label as the score
]


def _write(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    path = tmp_path / "rec.jsonl"
    text = []
    for line in lines:
        if line.get("body_base64") is not None:
            line = {k: v for k, v in line.items() if k != "body"}
        text.append(json.dumps(line))
    path.write_text("\n".join(text) + "\n")
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_golden_keeps_undisturbed_scored_answers_and_counts_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = _write(tmp_path, LINES)
    out = tmp_path / "golden.jsonl"
    code, stdout, err = _run(["corpus", "golden", str(rec), "--score", "$.score", "--out", str(out), "--header", "x-model"], capsys)
    assert code == 0, err
    report = stdout.splitlines()
    assert report[0] == f"kept 5 of 15 exchanges to {out}; dropped 10"
    counts = {" ".join(line.split()[1:]): int(line.split()[0]) for line in report[1:]}
    assert counts == {
        "no response recorded": 1, "status not 2xx": 1, "a fault applied": 1, "answer is an event stream": 1,
        "answer is not JSON": 1, "score missing": 2, "score not finite": 1, "request body not JSON": 1,
        "duplicate request": 1,
    }
    cases = [json.loads(line) for line in out.read_text().splitlines()]
    assert cases == [
        {"body": {"a": 1}, "expected": 0.25, "method": "POST", "path": "/predict", "headers": {"X-Model": "v3"}},
        {"body": {"a": 11}, "expected": 0.1, "method": "POST", "path": "/predict?v=2"},
        {"body": {"a": 1}, "expected": 0.3, "method": "POST", "path": "/v2/predict"},
        {"body": {"a": 1}, "expected": 0.3, "method": "PUT", "path": "/predict"},
        {"body": {"b": [1, 2]}, "expected": "high", "method": "POST", "path": "/predict"},
    ]
    golden = load_golden(out)  # today's golden format, as the steady-state checker reads it
    assert [(c.method, c.path, c.expected) for c in golden.cases] == [
        ("POST", "/predict", 0.25), ("POST", "/predict?v=2", 0.1), ("POST", "/v2/predict", 0.3), ("PUT", "/predict", 0.3),
        ("POST", "/predict", "high"),
    ]
    assert golden.cases[0].headers == (("X-Model", "v3"),)


def test_golden_from_an_imported_har(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, out = tmp_path / "corpus.jsonl", tmp_path / "golden.jsonl"
    assert _run(["corpus", "import", str(HAR), "--out", str(corpus)], capsys)[0] == 0
    code, stdout, err = _run(["corpus", "golden", str(corpus), "--score", "$.score", "--out", str(out)], capsys)
    assert code == 0, err
    assert stdout.splitlines()[0] == f"kept 2 of 7 exchanges to {out}; dropped 5"
    assert [c.expected for c in load_golden(out).cases] == [0.12345, 0.0075]


def test_no_qualifying_exchange_exits_3_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = _write(tmp_path, [_x({"a": 1}, status=500, answer={"score": 1.0})])
    out = tmp_path / "golden.jsonl"
    code, stdout, err = _run(["corpus", "golden", str(rec), "--score", "$.score", "--out", str(out)], capsys)
    assert code == 3
    assert "kept 0 of 1 exchanges; dropped 1" in stdout and "1  status not 2xx" in stdout
    assert f"{rec}: no exchange qualifies" in err
    assert not out.exists()


def test_malformed_line_or_score_path_exits_3_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "rec.jsonl"
    rec.write_text(json.dumps(_x({"a": 1}, answer={"score": 1})) + "\n" + json.dumps(_x({"a": 2}, status=99)) + "\n")
    out = tmp_path / "golden.jsonl"
    code, _, err = _run(["corpus", "golden", str(rec), "--score", "$.score", "--out", str(out)], capsys)
    assert code == 3 and err.startswith(f"{rec}:2: response.status: must be an HTTP status")
    assert not out.exists()
    code, _, err = _run(["corpus", "golden", str(rec), "--score", "score", "--out", str(out)], capsys)
    assert code == 3 and err.startswith("--score: JSON path must start with '$'")
    code, _, err = _run(["corpus", "golden", str(tmp_path / "missing.jsonl"), "--score", "$.s", "--out", str(out)], capsys)
    assert code == 3 and "cannot read" in err
