"""Replay agreement, one answer at a time: how a replayed answer is compared with the recorded one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brownout.load.replay import load_recorded
from brownout.records import RequestRecord
from brownout.steady.replay import Disagreement, ReplayJudge, ReplayTally

RECORDED: list[dict[str, Any]] = [
    {"status": 200, "headers": {}, "body": {"score": 0.25, "model": "m1", "request_id": "a", "tags": ["x", "y"],
                                            "email": "[REDACTED]"}},
    {"status": 503, "headers": {}, "body": {"error": "busy"}},
    {"status": 200, "headers": {"Content-Type": "text/event-stream"},
     "events": [{"data": {"token": "a", "score": 0.5}}, {"data": "[DONE]"}]},
    {"status": 200, "headers": {}, "body_base64": "AAEC", "content_type": "application/octet-stream"},
    None,
]


@pytest.fixture
def judge(tmp_path: Path) -> ReplayJudge:
    path = tmp_path / "rec.jsonl"
    lines = [{"body": {"i": i}, "ts": float(i), **({"response": r} if r is not None else {})}
             for i, r in enumerate(RECORDED)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return ReplayJudge(load_recorded(path), "$.score", 0.01, ("$.request_id",))


def _record(index: int | None, status: int = 200, body: Any = None, **extra: Any) -> RequestRecord:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    return RequestRecord(0.0, 0.01, status, body=raw, payload=index, **extra)


def _kind(outcome: Disagreement | None | bool) -> str | None | bool:
    return outcome.kind if isinstance(outcome, Disagreement) else outcome


GOOD = {"score": 0.251, "model": "m1", "request_id": "other", "tags": ["x", "y"], "email": "real@example.com"}


@pytest.mark.parametrize(("record", "kind"), [
    (_record(0, body=GOOD), None),  # score within tolerance, ignored and redacted fields not compared
    (_record(0, body={**GOOD, "score": 0.3}), "score"),
    (_record(0, body={k: v for k, v in GOOD.items() if k != "model"}), "missing_field"),
    (_record(0, body={k: v for k, v in GOOD.items() if k != "score"}), "missing_field"),
    (_record(0, body={**GOOD, "extra": 1}), "unexpected_field"),
    (_record(0, body={**GOOD, "model": "m2"}), "value"),
    (_record(0, body={**GOOD, "tags": ["x"]}), "value"),
    (_record(0, status=500, body={"error": "boom"}), "status"),
    (_record(0, status=0, error="timeout"), "no_answer"),
    (_record(0, body=b"<html>"), "not_json"),
    (_record(1, status=503, body={"error": "busy"}), None),  # an error recorded is an error expected
    (_record(2, body=b'data: {"token": "a", "score": 0.5}\n\ndata: [DONE]\n\n'), None),
    (_record(2, body=b'data: {"token": "b", "score": 0.5}\n\ndata: [DONE]\n\n'), "value"),
    (_record(2, body=b'data: {"token": "a", "score": 0.5}\n\n'), "events"),
    (_record(3, body=b"\x00\x01\x02"), None),
    (_record(3, body=b"\x00\x01"), "body"),
    (_record(4, body={"anything": 1}), False),  # no answer recorded: nothing to compare
    (_record(None, body=GOOD), False),  # a request from no corpus entry
    (_record(0, body=GOOD, edge_case="malformed_json"), False),
])
def test_how_answers_are_compared(judge: ReplayJudge, record: RequestRecord, kind: str | None | bool) -> None:
    assert _kind(judge.judge(record)) == kind


def test_a_disagreement_names_the_line_and_the_difference(judge: ReplayJudge) -> None:
    outcome = judge.judge(_record(0, body={**GOOD, "score": 0.9}))
    assert str(outcome) == "line 1: score: $.score = 0.9, recorded 0.25 ± 0.01"
    outcome = judge.judge(_record(0, body={k: v for k, v in GOOD.items() if k != "model"}))
    assert str(outcome) == 'line 1: missing_field: $.model missing, recorded "m1"'


def test_a_tally_counts_kinds_and_keeps_the_first_examples(judge: ReplayJudge) -> None:
    tally = ReplayTally()
    for score in (0.25, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3):
        tally.add(judge.judge(_record(0, body={**GOOD, "score": score})))  # type: ignore[arg-type]
    assert tally.compared == 8 and tally.agreed == 1 and tally.agreement == pytest.approx(1 / 8)
    assert tally.kinds == {"score": 7} and len(tally.examples) == 5 and "0.9" in str(tally.examples[0])
