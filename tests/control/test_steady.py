"""Steady state (the window model itself: tests/load/test_windows.py): PSI, golden agreement, labelled metrics, verdicts, checker."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from brownout.experiment.model import AbortWhen
from brownout.experiment.steady import SteadyState
from brownout.records import RequestRecord
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.golden import GoldenCase, ProbeResult, agreement_rate, agrees, judge_probe, lenient_json, load_golden
from brownout.steady.quality import brier, check_response, precision_recall, psi
from brownout.steady.verdicts import Verdict, build_checks, decide_outcome
from brownout.exit_codes import Outcome
from faults.errors import InvalidInputs
from faults.jsonpath import compile_path


def rec(t: float, latency_ms: float = 10.0, status: int = 200, body: dict | None = None, **kw: object) -> RequestRecord:
    raw = json.dumps(body).encode() if body is not None else None
    return RequestRecord(scheduled_at=t, latency_s=latency_ms / 1000, status=status, body=raw, **kw)  # type: ignore[arg-type]


# -- PSI and labelled metrics -------------------------------------------------------

def test_psi_identical_distributions_is_near_zero() -> None:
    rng = random.Random(1)
    base = [rng.random() for _ in range(5000)]
    same = [rng.random() for _ in range(5000)]
    assert psi(base, base) == pytest.approx(0.0, abs=1e-12)
    assert psi(base, same) < 0.01


def test_psi_shifted_distribution_is_large() -> None:
    rng = random.Random(2)
    base = [rng.gauss(0.3, 0.1) for _ in range(5000)]
    assert psi(base, [rng.gauss(0.36, 0.1) for _ in range(5000)]) > 0.1
    assert psi(base, [rng.gauss(0.6, 0.1) for _ in range(5000)]) > 1.0


def test_psi_empty_bins_are_smoothed_not_infinite() -> None:
    value = psi([0.1 * i for i in range(100)], [100.0] * 50)
    assert math.isfinite(value) and value > 5


def test_precision_recall_and_brier_on_known_inputs() -> None:
    scores = [0.9, 0.8, 0.3, 0.6, 0.1]
    labels = [1, 0, 1, 1, 0]
    # positives at 0.5: 0.9 (tp), 0.8 (fp), 0.6 (tp); missed: 0.3 (fn)
    assert precision_recall(scores, labels) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    expected = ((0.1) ** 2 + 0.8**2 + 0.7**2 + 0.4**2 + 0.1**2) / 5
    assert brier(scores, labels) == pytest.approx(expected)
    assert precision_recall([0.1], [0]) == (None, None)
    assert brier([], []) is None


# -- per-response validity ------------------------------------------------------------

def test_check_response_validity() -> None:
    required = [compile_path("$.score"), compile_path("$.model_version")]
    score = compile_path("$.score")
    ok = check_response(b'{"score": 0.4, "model_version": "3"}', required, score)
    assert ok.valid and ok.strict_json and ok.scores == (0.4,)
    nan = check_response(b'{"score": NaN, "model_version": "3"}', required, score)
    assert not nan.valid and nan.non_finite and not nan.strict_json and nan.problem == "NaN or Infinity in the response"
    missing = check_response(b'{"score": 0.4}', required, score)
    assert missing.problem == "missing $.model_version"
    assert check_response(b"<html>oops", required, score).problem == "not JSON"


# -- golden sets ----------------------------------------------------------------------

def test_lenient_json_and_agreement() -> None:
    assert lenient_json(b'{"a": 1}') == ({"a": 1}, True)
    value, strict = lenient_json(b'[Infinity, -Infinity]')
    assert value == [math.inf, -math.inf] and not strict
    assert agrees(0.5, 0.5009, 0.001) and not agrees(0.5, 0.502, 0.001)
    assert not agrees(0.5, math.nan, 1.0) and agrees("fraud", "fraud", 0.0) and not agrees(1, True, 0.0)


def test_load_golden_reports_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text('{"body": {}, "expected": 1}\nnot json\n\n{"body": {}, "expected": 1, "label": 2}\n')
    with pytest.raises(InvalidInputs) as raised:
        load_golden(path)
    assert [e.line for e in raised.value.errors] == [2, 4]
    path.write_text('{"body": {"x": 1}, "expected": 0.2, "label": 1, "path": "/v2/predict"}\n')
    golden = load_golden(path)
    assert golden.has_labels and golden.cases[0].path == "/v2/predict" and golden.cases[0].method == "POST"


def test_judge_probe_and_agreement_rate() -> None:
    case = GoldenCase(line=1, body={}, expected=0.25, label=0)
    score = compile_path("$.outputs[0].score")

    def probe(body: bytes | None, status: int = 200, error: str | None = None) -> ProbeResult:
        return ProbeResult(at=1.0, case=case, status=status, latency_s=0.01, body=body, error=error)

    outcomes = [
        judge_probe(probe(b'{"outputs": [{"score": 0.2504}]}'), score, 0.001),
        judge_probe(probe(b'{"outputs": [{"score": 0.3}]}'), score, 0.001),
        judge_probe(probe(b'{"outputs": []}'), score, 0.001),
        judge_probe(probe(None, 503), score, 0.001),
        judge_probe(probe(None, 0, "reset"), score, 0.001),
    ]
    assert [o.agreed for o in outcomes] == [True, False, False, False, False]
    assert outcomes[1].reason == "$.outputs[0].score = 0.3, expected 0.25 ± 0.001"
    assert outcomes[3].reason == "status 503" and outcomes[4].reason == "transport error: reset"
    assert agreement_rate(outcomes) == pytest.approx(0.2) and agreement_rate([]) is None


# -- verdicts and the checker ---------------------------------------------------------

def test_verdict_message_names_window_sli_bound_value_and_faults() -> None:
    v = Verdict("method", 7, 35.0, 40.0, "latency_p99_ms", 250.0, 412.3, False, "<=", ("latency@feature-store",))
    assert v.message() == ("window 7 (35s–40s, method): latency_p99_ms = 412.3, bound <= 250: violated; "
                           "faults active: latency@feature-store")
    assert v.as_dict()["active_faults"] == ["latency@feature-store"]


STEADY = SteadyState.model_validate({
    "window": 1,
    "sla": {"latency_p99_ms": 100, "error_rate": 0.1, "min_throughput": 50},
    "predictions": {"score": "$.score", "max_psi": 0.1, "schema": ["$.score"]},
})


def feed_window(checker: SteadyStateChecker, index: int, *, latency_ms: float = 10, status: int = 200,
                shift: float = 0.0, rng: random.Random) -> None:
    for i in range(200):
        t = index + i / 200
        checker.feed(rec(t, latency_ms, status, {"score": min(1.0, rng.random() * 0.5 + shift)}))


def test_checker_windows_phases_verdicts_and_drift() -> None:
    rng = random.Random(3)
    checker = SteadyStateChecker(STEADY, AbortWhen(error_rate=0.5))
    for i in range(2):
        feed_window(checker, i, rng=rng)
    feed_window(checker, 2, latency_ms=300, shift=0.4, rng=rng)
    feed_window(checker, 3, rng=rng)
    phases = ["baseline", "baseline", "method", "recovery"]
    faults = [(), (), ("latency@model",), ()]
    results = [checker.close_window(i, phase=phases[i], active_faults=faults[i]) for i in range(4)]
    assert [r.ok for r in results] == [True, True, False, True]
    failed = {v.sli: v for v in results[2].verdicts if not v.ok}
    assert set(failed) == {"latency_p99_ms", "score_psi"}
    assert failed["latency_p99_ms"].active_faults == ("latency@model",)
    assert failed["latency_p99_ms"].value == pytest.approx(300, rel=0.01)
    assert results[0].quality.psi is None  # baseline windows are the reference
    assert results[3].quality.psi is not None and results[3].quality.psi < 0.1
    assert all(v.window_index == 2 and v.phase == "method" for v in failed.values())

    phases_out = {p.phase: p for p in checker.phase_results()}
    assert phases_out["baseline"].windows == 2 and phases_out["baseline"].stats.sent == 400
    assert phases_out["baseline"].held and not phases_out["method"].held

    recovery = checker.recovery(faults_ended_at=3.0, within=1.0)
    assert recovery.recovered and recovery.time_to_recover_s == 0.0
    checks = checker.checks(recovery)
    assert {(c.phase, c.sli) for c in checks if not c.ok} == {("method", "latency_p99_ms"), ("method", "score_psi")}
    assert decide_outcome(checks, aborted=False, recovery=recovery) is Outcome.DEVIATED


def test_checker_abort_when_and_late_records() -> None:
    rng = random.Random(4)
    checker = SteadyStateChecker(STEADY, AbortWhen(error_rate=0.5, latency_p99_ms=5000))
    feed_window(checker, 0, status=503, rng=rng)
    result = checker.close_window(0, phase="method", active_faults=["error@model"])
    assert [v.sli for v in result.abort] == ["error_rate"]
    assert "error_rate = 1, bound <= 0.5" in result.abort[0].message()
    checker.feed(rec(0.5))  # belongs to a closed window
    assert checker.late == 1


def test_close_due_closes_in_order_with_grace_including_empty_windows() -> None:
    checker = SteadyStateChecker(STEADY)
    checker.feed(rec(0.5))
    closed = checker.close_due(3.5, grace=0.5, phase_of=lambda s, e: "baseline", faults_of=lambda s, e: [])
    assert [r.index for r in closed] == [0, 1, 2]
    assert closed[1].stats.sent == 0
    # Nothing was scheduled in it: every bound says "no data", none fails and none holds.
    empty = closed[1].verdicts
    assert [v.sli for v in empty] == ["latency_p99_ms", "error_rate", "throughput_rps"]
    assert all(v.no_data and v.ok and v.value is None for v in empty) and closed[1].ok
    assert empty[0].message() == ("window 1 (1s–2s, baseline): latency_p99_ms = n/a, bound <= 100: no data; "
                                  "faults active: none")
    checks = {c.sli: c for c in checker.checks()}
    assert checks["latency_p99_ms"].ok and checks["latency_p99_ms"].no_data == 2
    assert checks["latency_p99_ms"].message() == "baseline: latency_p99_ms <= 100: held in 1 window(s); no data in 2"


def test_checker_keeps_the_most_in_flight_per_window() -> None:
    checker = SteadyStateChecker(STEADY)
    for t, n in ((0.1, 3), (0.5, 9), (0.9, 4), (1.2, 2)):
        checker.observe_in_flight(t, n)
    checker.feed(rec(0.5))
    first = checker.close_window(0, phase="baseline")
    checker.observe_in_flight(0.95, 50)  # window 0 is closed: the sample is dropped, nothing is late
    assert first.stats.in_flight_max == 9 and checker.late == 0
    assert checker.close_window(1, phase="baseline").stats.in_flight_max == 2


def test_a_check_without_data_in_any_window_says_so() -> None:
    checks = build_checks([Verdict("method", i, i, i + 1, "error_rate", 0.1, None, True) for i in range(3)])
    assert checks[0].ok and not checks[0].judged
    assert checks[0].message() == "method: error_rate <= 0.1: no data in any of 3 window(s)"


def test_recovery_measures_time_to_recover() -> None:
    rng = random.Random(5)
    checker = SteadyStateChecker(STEADY)
    feed_window(checker, 0, rng=rng)
    checker.close_window(0, phase="baseline")
    feed_window(checker, 1, latency_ms=500, rng=rng)
    checker.close_window(1, phase="recovery")
    feed_window(checker, 2, latency_ms=500, rng=rng)
    checker.close_window(2, phase="recovery")
    for i in (3, 4):
        feed_window(checker, i, rng=rng)
        checker.close_window(i, phase="recovery")
    late = checker.recovery(faults_ended_at=1.0, within=1.5)
    assert late.time_to_recover_s == pytest.approx(2.0) and not late.recovered
    ok = checker.recovery(faults_ended_at=1.0, within=2.0)
    assert ok.recovered
    # Windows before the recovery deadline do not fail the recovery-phase checks.
    assert all(c.ok for c in build_checks(checker.verdicts, ok) if c.phase == "recovery")
    assert not all(c.ok for c in build_checks(checker.verdicts, late) if c.phase == "recovery")


def test_outcomes() -> None:
    bad_baseline = build_checks([Verdict("baseline", 0, 0, 1, "error_rate", 0.1, 0.5, False)])
    assert decide_outcome(bad_baseline, aborted=False) is Outcome.BASELINE_FAILED
    assert decide_outcome(bad_baseline, aborted=True) is Outcome.ABORTED
    good = build_checks([Verdict("method", 0, 0, 1, "error_rate", 0.1, 0.0, True)])
    assert decide_outcome(good, aborted=False) is Outcome.HELD


def test_checker_golden_probes_give_agreement_precision_recall_brier() -> None:
    golden_path = Path(__file__).parent / "data" / "data" / "golden.jsonl"
    steady = SteadyState.model_validate({"window": 1, "predictions": {
        "golden": str(golden_path), "score": "$.score", "min_agreement": 0.9, "min_recall": 0.9, "max_brier": 0.1}})
    golden = load_golden(golden_path)
    legit, fraud = golden.cases  # expected 0.0123 (label 0) and 0.91 (label 1)
    checker = SteadyStateChecker(steady)
    for i, (case, score) in enumerate([(legit, 0.0123), (fraud, 0.91), (legit, 0.0123), (fraud, 0.2)]):
        body = json.dumps({"score": score}).encode()
        checker.feed_probe(ProbeResult(at=i / 4, case=case, status=200, latency_s=0.01, body=body))
    result = checker.close_window(0, phase="method", active_faults=["corrupt@model"])
    q = result.quality
    assert q.probes == 4 and q.agreement == pytest.approx(0.75)
    assert q.precision == pytest.approx(1.0) and q.recall == pytest.approx(0.5)
    assert q.brier == pytest.approx((0.0123**2 * 2 + 0.09**2 + 0.8**2) / 4)
    failed = {v.sli for v in result.verdicts if not v.ok}
    assert failed == {"golden_agreement", "recall", "brier"}


async def test_golden_prober_probes_a_real_server_in_turn() -> None:
    import asyncio

    import aiohttp
    from aiohttp import web

    from brownout.steady.golden import GoldenProber, GoldenSet

    seen: list[tuple[str, dict]] = []

    async def predict(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((request.path_qs, body))
        return web.json_response({"score": body["amount"] / 1000})

    app = web.Application()
    app.router.add_post("/{tail:.*}", predict)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    golden = GoldenSet(Path("g.jsonl"), (
        GoldenCase(1, {"amount": 12.5}, 0.0125, 0),
        GoldenCase(2, {"amount": 950.0}, 0.91, 1, path="/v2/predict?version=2&x=a%2Fb"),
    ))
    results: list[ProbeResult] = []
    stop = asyncio.Event()

    def on_result(result: ProbeResult) -> None:
        results.append(result)
        if len(results) == 4:
            stop.set()

    try:
        async with aiohttp.ClientSession() as session:
            prober = GoldenProber(session, f"http://127.0.0.1:{port}/predict", golden, interval=0.01,
                                  clock=lambda: 1.5, on_result=on_result)
            await asyncio.wait_for(prober.run(stop), 10)
    finally:
        await runner.cleanup()
    assert [p for p, _ in seen] == ["/predict", "/v2/predict?version=2&x=a%2Fb"] * 2  # a recorded query is sent as is
    score = compile_path("$.score")
    assert [judge_probe(r, score, 0.001).agreed for r in results] == [True, False, True, False]
    assert all(r.at == 1.5 and r.status == 200 for r in results)
