"""Every edge case gets its expected outcome from a validating server; a buggy one is caught."""

from __future__ import annotations

import json
from pathlib import Path

from brownout.load.edgecases import EDGE_CASES, parse_edge_cases
from brownout.load.generator import run_load
from brownout.load.payloads import PayloadSource, load_corpus
from brownout.load.shapes import ConstantShape


def _source(tmp_path: Path, **ratios: float) -> PayloadSource:
    corpus = tmp_path / "tx.jsonl"
    corpus.write_text("\n".join(json.dumps({"body": {"amount": a, "merchant": m}})
                                for a, m in [(12.5, "acme"), (99, "zeta"), (0.5, "corner shop")]))
    return PayloadSource(load_corpus(corpus), parse_edge_cases(ratios), seed=11)


async def test_each_edge_case_gets_its_expected_outcome(server: str, tmp_path: Path) -> None:
    ratios = {name: 0.1 for name in EDGE_CASES}
    ratios["oversized"] = 0.02  # 2 MiB each: a few are enough
    summary = await run_load(f"{server}/predict", ConstantShape(150, 1.5), _source(tmp_path, **ratios),
                             request_timeout=5)
    report = summary.edge_cases
    by_name = {c.name: c for c in report.cases}
    assert set(by_name) == set(EDGE_CASES)
    assert report.findings == ()
    assert dict(by_name["malformed_json"].outcomes) == {"4xx": by_name["malformed_json"].sent}
    assert dict(by_name["unicode"].outcomes) == {"2xx": by_name["unicode"].sent}  # valid input, accepted
    for name in ("oversized", "missing_field", "wrong_type", "nan_infinity", "empty_body"):
        assert set(dict(by_name[name].outcomes)) == {"4xx"}, name
    edge_total = sum(c.sent for c in report.cases)
    assert summary.total.sent + edge_total == summary.sent  # counted apart from normal traffic
    assert summary.total.status_2xx == summary.total.sent


async def test_an_edge_case_that_gets_a_5xx_is_a_finding(server: str, tmp_path: Path) -> None:
    summary = await run_load(f"{server}/buggy", ConstantShape(100, 1), _source(tmp_path, missing_field=0.3))
    findings = summary.edge_cases.findings
    assert findings, summary.edge_cases
    assert all(f.edge_case == "missing_field" for f in findings)
    five = [f for f in findings if f.got == "5xx"]
    assert five and five[0].severe and five[0].example_status == 500 and five[0].expected == ("4xx",)
    assert summary.total.status_5xx == 0  # normal traffic unaffected
