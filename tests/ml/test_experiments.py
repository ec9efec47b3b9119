"""The ML/LLM game days validate, and the new experiment keys behave (time scale, errors, redaction)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from brownout.experiment.loader import load_experiment
from faults.errors import InvalidInputs

LIBRARY = Path(__file__).resolve().parents[2] / "experiments"
GAME_DAYS = sorted([*LIBRARY.glob("ml-*.yaml"), *LIBRARY.glob("llm-*.yaml")])


def test_there_is_a_game_day_for_each_fault_family() -> None:
    names = {p.stem for p in GAME_DAYS}
    assert {"ml-missing-features", "ml-stale-features", "ml-nan-tensor", "ml-schema-drift", "ml-wrong-shape",
            "ml-score-corruption", "ml-crossed-responses", "ml-model-version-skew",
            "llm-ttft-delay", "llm-cut-stream", "llm-drop-finish-reason"} <= names


@pytest.mark.parametrize("path", GAME_DAYS, ids=lambda p: p.stem)
def test_game_day_validates_and_says_what_it_teaches(path: Path) -> None:
    exp = load_experiment(path, env={})
    assert "Teaches" in exp.description and exp.method
    assert exp.target.url.startswith("http://127.0.0.1:8080/")
    if path.stem.startswith("llm-"):
        assert exp.steady_state.streams is not None
        assert exp.steady_state.streams.url == "http://127.0.0.1:8080/v1/chat/completions"
    else:
        assert exp.steady_state.predictions is not None and exp.steady_state.predictions.golden is not None


def write(tmp_path: Path, steady: dict) -> Path:  # type: ignore[type-arg]
    doc = {"version": 1, "title": "t", "target": {"url": "http://127.0.0.1:9/v1/models"},
           "load": {"rate": 1, "duration": "10s"}, "steady_state": steady}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_stream_durations_scale_and_headers_are_redacted(tmp_path: Path) -> None:
    path = write(tmp_path, {"streams": {"interval": "200ms", "timeout": "4s", "headers": {"Authorization": "Bearer s3"},
                                        "sla": {"ttft_p99_ms": 500}}})
    exp = load_experiment(path, time_scale=0.5)
    streams = exp.steady_state.streams
    assert streams is not None and streams.interval == pytest.approx(0.1) and streams.timeout == pytest.approx(2.0)
    assert streams.sla.ttft_p99_ms == 500 and streams.sla.max_integrity_failures == 0  # bounds are not durations
    assert streams.body["stream"] is True and streams.url is None
    assert exp.redacted()["steady_state"]["streams"]["headers"] == {"Authorization": "***"}


def test_stream_and_invariant_errors_name_their_path(tmp_path: Path) -> None:
    path = write(tmp_path, {"streams": {"url": "ftp://x", "sla": {"min_goodput": 2, "ttft_p99": 1}},
                            "predictions": {"max_invalid_rate": -1, "model_version_path": "version"}})
    with pytest.raises(InvalidInputs) as info:
        load_experiment(path)
    fields = {e.field for e in info.value.errors}
    assert {"steady_state.streams.url", "steady_state.streams.sla.min_goodput", "steady_state.streams.sla.ttft_p99",
            "steady_state.predictions.max_invalid_rate", "steady_state.predictions.model_version_path"} <= fields
