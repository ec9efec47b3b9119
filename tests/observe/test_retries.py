"""The retry SLIs as judges of the sidecars' counters: windows built from known counter increases
(what ``SidecarReader`` reads off real proxies, tests/observe/test_sidecars.py) and known load figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from brownout.experiment.steady import Sla, SteadyState
from brownout.observe.sidecars import SidecarDelta, SidecarWindow
from brownout.records import RequestRecord
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.observations import Observation
from brownout.steady.retries import RetryJudge, parse_sli, retry_judges
from brownout.steady.verdicts import build_checks
from brownout.windows import WindowStats
from faults.errors import InvalidInputs

A, B, C = "http://a:1", "http://b:1", "http://c:1"


def delta(sidecar: str, requests: dict[tuple[str, str], float] | None, violations: dict[str, float] | None = None,
          **kw: object) -> SidecarDelta:
    """One sidecar's increases: requests by (route, status), violations by route (every route it serves)."""
    if requests is None:
        return SidecarDelta(sidecar, None, note="unreachable")
    counters = {("brownout_requests_total", (("route", r), ("status", s))): n for (r, s), n in requests.items()}
    for route, n in (violations or {}).items():
        counters[("brownout_retry_after_violations_total", (("route", route),))] = n
    return SidecarDelta(sidecar, counters, **kw)  # type: ignore[arg-type]


def stats(sent: int, index: int = 0) -> WindowStats:
    return WindowStats(index, index * 1.0, index + 1.0, sent, 0, 0, {"2xx": sent})


def judge(amplification: dict[str, float] | None = None, violations: dict[str, float] | None = None) -> RetryJudge:
    found = RetryJudge.from_sla(Sla(max_retry_amplification=amplification or {},
                                    max_retry_after_violations=violations or {}))
    assert found is not None
    return found


def test_amplification_is_arrivals_on_every_proxy_serving_the_route_over_sends() -> None:
    j = judge({"gpu": 1.5}, {"gpu": 0})
    window = SidecarWindow(0, (delta(A, {("gpu", "200"): 60, ("gpu", "429"): 180, ("api", "200"): 100}, {"gpu": 7}),
                               delta(B, {("gpu", "200"): 40, ("gpu", "429"): 40}, {"gpu": 0}),
                               delta(C, {("feature", "200"): 500}, {"feature": 3})))  # serves another route
    amp, early = j(window, stats(100))
    assert amp.sli == "retry_amplification[gpu]" and amp.value == pytest.approx(3.2) and amp.bound == 1.5
    assert not amp.holds() and amp.note == "320 arrivals / 100 sent" and amp.labels == (("route", "gpu"),)
    assert early.sli == "retry_after_violations[gpu]" and early.value == 7 and early.bound == 0 and not early.holds()
    verdict = amp.verdict(phase="method", window=3, start=3.0, end=4.0, active_faults=["rate_limit@gpu"])
    assert "retry_amplification[gpu] = 3.2, bound <= 1.5: violated (320 arrivals / 100 sent)" in verdict.message()
    # Without retries: one arrival per send.
    [ok, none] = j(SidecarWindow(1, (delta(A, {("gpu", "200"): 50}, {"gpu": 0}),
                                     delta(B, {("gpu", "200"): 50}, {"gpu": 0}))), stats(100))
    assert ok.value == 1.0 and ok.holds() and none.value == 0 and none.holds()


def test_nothing_sent_is_no_data_that_does_not_fail() -> None:
    [amp] = judge({"gpu": 1.5})(SidecarWindow(0, (delta(A, {("gpu", "200"): 4}, {"gpu": 0}),)), stats(0))
    assert amp.value is None and amp.holds() and "nothing sent (4 arrivals)" in (amp.note or "")


def test_a_proxy_not_read_spoils_only_the_routes_it_serves() -> None:
    j = judge({"gpu": 1.5, "api": 2.0})
    both = (delta(A, {("gpu", "200"): 10}, {"gpu": 0}), delta(B, {("api", "200"): 10}, {"api": 0}))
    assert [m.value for m in j(SidecarWindow(0, both), stats(10))] == [1.0, 1.0]
    # B unreadable: its route has no data (its arrivals would be short), A's route is judged.
    gpu, api = j(SidecarWindow(1, (both[0], delta(B, None))), stats(10))
    assert gpu.value == 1.0 and api.value is None and api.holds() and "http://b:1: unreachable" in (api.note or "")
    # A restart loses what the old process counted: no data either.
    gpu, _ = j(SidecarWindow(2, (delta(A, {("gpu", "200"): 3}, {"gpu": 0}, restarted=True, note="restarted"),
                                 both[1])), stats(10))
    assert gpu.value is None and "restarted" in (gpu.note or "")


def test_a_proxy_never_read_spoils_every_route() -> None:
    [amp] = judge({"gpu": 1.5})(SidecarWindow(0, (delta(A, {("api", "200"): 5}, {"api": 0}), delta(B, None))),
                                stats(5))
    assert amp.value is None and amp.on_empty == "skip"


def test_a_route_no_proxy_serves_fails_naming_the_routes_there_are() -> None:
    [amp] = judge({"gpu-wroker": 1.5})(SidecarWindow(0, (delta(A, {("gpu-worker", "200"): 5}, {"gpu-worker": 0}),)),
                                       stats(5))
    assert amp.value is None and not amp.holds()
    assert amp.note == "no proxy serves route 'gpu-wroker' (routes: gpu-worker)"


def test_a_route_without_requests_yet_is_served_by_its_zero_violations_counter() -> None:
    [amp] = judge({"gpu": 1.5})(SidecarWindow(0, (delta(A, {}, {"gpu": 0}),)), stats(5))
    assert amp.value == 0.0 and amp.holds()


def test_a_phase_pools_its_windows_and_scales_the_violations_bound() -> None:
    j = judge({"gpu": 1.5}, {"gpu": 2})
    w0 = SidecarWindow(0, (delta(A, {("gpu", "200"): 10}, {"gpu": 2}),), (j,)).settle(stats(10, 0))
    w1 = SidecarWindow(1, (delta(A, {("gpu", "200"): 10, ("gpu", "429"): 30}, {"gpu": 3}),), (j,)).settle(stats(10, 1))
    assert [m.value for m in w0.measurements()] == [1.0, 2] and [m.holds() for m in w1.measurements()] == [False, False]
    phase = w0.merge(w1)
    assert phase.windows == 2 and phase.stats is not None and phase.stats.sent == 20
    amp, early = phase.measurements()
    assert amp.value == pytest.approx(2.5) and amp.note == "50 arrivals / 20 sent"
    assert early.value == 5 and early.bound == 4 and not early.holds() and "over 2 windows" in (early.note or "")


def test_the_checker_gives_window_verdicts_checks_per_route_and_phase_verdicts() -> None:
    sla = Sla(max_retry_amplification={"gpu": 1.5, "api": 1.5})
    checker = SteadyStateChecker(SteadyState(window=1.0, sla=sla))
    judges = tuple(retry_judges(sla))
    arrivals = [(10, 10), (40, 10), (35, 10)]  # gpu's arrivals per window; api stays at 1 per send
    for i, (gpu, api) in enumerate(arrivals):
        window = SidecarWindow(i, (delta(A, {("gpu", "200"): gpu, ("api", "200"): api}, {"gpu": 0, "api": 0}),), judges)
        checker.feed_observation(Observation("sidecars", i, detail=window))
        for _ in range(10):
            checker.feed(RequestRecord(scheduled_at=i + 0.5, latency_s=0.001, status=200))
        checker.close_window(i, phase="baseline" if i == 0 else "method")
    names = [(v.sli, v.value, v.ok) for v in checker.verdicts]
    assert names == [("retry_amplification[gpu]", 1.0, True), ("retry_amplification[api]", 1.0, True),
                     ("retry_amplification[gpu]", 4.0, False), ("retry_amplification[api]", 1.0, True),
                     ("retry_amplification[gpu]", 3.5, False), ("retry_amplification[api]", 1.0, True)]
    checks = {c.name: c for c in build_checks(checker.verdicts)}
    assert not checks["method: retry_amplification[gpu] <= 1.5"].ok
    assert checks["method: retry_amplification[api] <= 1.5"].ok and checks["baseline: retry_amplification[gpu] <= 1.5"].ok
    phases = {p.phase: p for p in checker.phase_results()}
    [gpu, api] = phases["method"].verdicts
    assert gpu.window_index is None and gpu.value == 3.75 and not gpu.ok and api.value == 1.0
    assert phases["method"].as_dict()["verdicts"][0]["message"].startswith(
        "method (1s–3s): retry_amplification[gpu] = 3.75, bound <= 1.5: violated (75 arrivals / 20 sent)")
    assert phases["baseline"].verdicts[0].value == 1.0


def test_no_judge_without_route_bounds() -> None:
    assert retry_judges(Sla(latency_p99_ms=100)) == [] and RetryJudge.from_sla(Sla()) is None


def test_sli_names_parse_back() -> None:
    assert parse_sli("retry_amplification[gpu-worker]") == ("retry_amplification", "gpu-worker")
    assert parse_sli("retry_after_violations[a.b]") == ("retry_after_violations", "a.b")
    assert parse_sli("latency_p99_ms") is None and parse_sli("retry_amplification") is None


def _write(tmp_path: Path, sla: str, proxies: str = 'proxies: [{admin: "http://127.0.0.1:9"}]') -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"version: 1\ntitle: t\ntarget: {{url: http://127.0.0.1:9/x}}\n{proxies}\n"
                    f"load: {{shape: constant, rate: 1, duration: 1s}}\nsteady_state:\n  sla: {sla}\n")
    return path


def test_bounds_are_validated_with_their_place(tmp_path: Path) -> None:
    from brownout.experiment import load_experiment

    ok = load_experiment(_write(tmp_path, "{max_retry_amplification: {gpu-worker: 1.5}, "
                                          "max_retry_after_violations: {gpu-worker: 0}}"))
    assert ok.steady_state.sla.max_retry_amplification == {"gpu-worker": 1.5}
    cases = {
        '{max_retry_amplification: {"": 1.5}}': ("steady_state.sla.max_retry_amplification", "'' is not a route name"),
        '{max_retry_amplification: {"gpu worker": 1.5}}': ("steady_state.sla.max_retry_amplification",
                                                           "'gpu worker' is not a route name"),
        "{max_retry_amplification: {gpu: -1}}": ("steady_state.sla.max_retry_amplification.gpu", "must be >= 0"),
        "{max_retry_amplification: {gpu: .inf}}": ("steady_state.sla.max_retry_amplification.gpu", "finite"),
        "{max_retry_after_violations: {gpu: .nan}}": ("steady_state.sla.max_retry_after_violations.gpu", "finite"),
        "{max_retry_after_violations: [gpu]}": ("steady_state.sla.max_retry_after_violations", "dictionary"),
    }
    for sla, (field, message) in cases.items():
        with pytest.raises(InvalidInputs) as caught:
            load_experiment(_write(tmp_path, sla))
        [error] = caught.value.errors
        assert error.field == field and message in error.message and error.line == 7, (sla, str(error))
    # A bound on a proxy's counters needs a Brownout proxy to read them.
    with pytest.raises(InvalidInputs) as caught:
        load_experiment(_write(tmp_path, "{max_retry_amplification: {gpu: 2}}", proxies=""))
    [error] = caught.value.errors
    assert error.field == "steady_state.sla.max_retry_amplification" and "needs a Brownout proxy" in error.message
    # A stress search never reads the proxies' counters.
    path = _write(tmp_path, "{latency_p99_ms: 100, max_retry_after_violations: {gpu: 0}}")
    path.write_text(path.read_text().replace("{shape: constant, rate: 1, duration: 1s}",
                                             "{shape: stress, from: 10, step: 10, step_duration: 1s, max: 50}"))
    with pytest.raises(InvalidInputs) as caught:
        load_experiment(path)
    [error] = caught.value.errors
    assert error.field == "steady_state.sla.max_retry_after_violations" and "stress search" in error.message


def test_the_json_schema_has_the_bounds() -> None:
    from brownout.experiment.schema import experiment_json_schema

    sla = experiment_json_schema()["$defs"]["Sla"]["properties"]
    for key in ("max_retry_amplification", "max_retry_after_violations"):
        assert sla[key]["type"] == "object" and sla[key]["additionalProperties"] == {"minimum": 0, "type": "number"}
        assert sla[key]["propertyNames"]["pattern"].startswith("^[A-Za-z0-9]")
