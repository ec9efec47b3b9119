"""``brownout run`` end to end: ML faults that keep every status 200 are caught by per-response invariants."""

from __future__ import annotations

from tests.runner.conftest import Stage, brownout_run, stage  # noqa: F401  (the fixture, shared)


async def test_version_skew_and_crossed_responses_exit_1_with_invariant_slis(stage: Stage) -> None:  # noqa: F811
    predictions = {"golden": "golden.jsonl", "score": "$.score", "tolerance": 0.0001, "probe_interval": "50ms",
                   "model_versions": ["v1"], "echo": {"request": "$.id", "response": "$.id"}}
    path = stage.experiment(
        steady_state={"window": "1s", "sla": {"error_rate": 0.05}, "predictions": predictions},
        method=[{"fault": "model_version_skew", "route": "model", "at": "1s", "duration": "2s",
                 "params": {"version": "v0-legacy"}, "match": {"probability": 0.5}},
                {"fault": "crossed_responses", "route": "model", "at": "1s", "duration": "2s",
                 "params": {"buffer_size": 8}}],
    )
    code, out, err = await brownout_run(str(path))
    assert code == 1, out + err
    journal = stage.journal()
    assert all(set(w["stats"]["statuses"]) == {"2xx"} for w in journal["windows"] if w["stats"]["sent"])
    failed = [v for v in journal["verdicts"] if not v["ok"]]
    slis = {v["sli"] for v in failed}
    assert {"model_version_skew_rate", "echo_mismatch_rate"} <= slis, failed
    assert all(v["phase"] != "baseline" for v in failed)
    skew = next(v for v in failed if v["sli"] == "model_version_skew_rate")
    assert skew["bound"] == 0 and 0 < skew["value"] <= 1
    assert "model_version_skew@model" in skew["active_faults"]
    assert any(w["quality"]["violations"].get("model_version") for w in journal["windows"])
