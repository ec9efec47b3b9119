"""Experiment files: typed model, every error at once with positions, ${VAR}, --set, --time-scale."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from brownout.experiment import ActionStep, FaultStep, experiment_json_schema, load_experiment
from brownout.load.shapes import SpikeShape, StepsShape
from faults.errors import InvalidInput, InvalidInputs
from faults.latency import LatencyFault
from faults.toxics import LatencyToxic

DATA = Path(__file__).parent / "data"
GOOD = DATA / "fraud_spike.yaml"
TCP = DATA / "redis_tcp_kill.yaml"
INVALID = DATA / "invalid.yaml"


def errors_of(path: Path, **kwargs: object) -> list[InvalidInput]:
    with pytest.raises(InvalidInputs) as raised:
        load_experiment(path, **kwargs)  # type: ignore[arg-type]
    return raised.value.errors


def test_good_file_parses_into_typed_objects() -> None:
    exp = load_experiment(GOOD, env={})
    assert exp.title.startswith("Feature store") and exp.seed == 7 and exp.source == GOOD.resolve()
    assert exp.target.url == "http://127.0.0.1:8080/predict"
    assert exp.proxies[0].admin == "http://127.0.0.1:8475" and exp.proxies[0].token is None  # ${X:-} unquoted: null
    assert exp.load.to_shape() == SpikeShape(rate=50, peak=500, at=60, hold=30, duration=180)
    assert {c.name: c.ratio for c in exp.load.edge_case_mix().cases} == {
        "malformed_json": 0.01, "oversized": 0.001, "missing_field": 0.01}
    assert exp.steady_state.window == 5.0 and exp.steady_state.sla.latency_p99_ms == 250
    predictions = exp.steady_state.predictions
    assert predictions is not None and predictions.required_paths == ("$.score", "$.model_version")
    fault, action = exp.method
    assert isinstance(fault, FaultStep) and isinstance(action, ActionStep)
    assert (fault.at, fault.duration) == (30.0, 60.0)
    assert fault.build() == LatencyFault(delay_ms=400, jitter_ms=100) and not fault.is_toxic
    assert action.target.docker is not None and action.target.docker.restart_after == 20.0
    assert action.at == 100.0
    assert exp.abort_when is not None and exp.abort_when.error_rate == 0.5
    assert exp.recovery.within == 30.0 and exp.report.dir == Path("reports")


def test_relative_paths_resolve_against_the_file() -> None:
    exp = load_experiment(GOOD, env={})
    assert exp.load.payloads == DATA / "data" / "transactions.jsonl"
    assert exp.steady_state.predictions is not None
    assert exp.steady_state.predictions.golden == DATA / "data" / "golden.jsonl"
    tcp = load_experiment(TCP, env={})
    assert isinstance(tcp.method[1], ActionStep) and tcp.method[1].target.process is not None
    assert tcp.method[1].target.process.pidfile == DATA / "run" / "worker.pid"


def test_env_variables_and_defaults() -> None:
    exp = load_experiment(GOOD, env={"BROWNOUT_TARGET": "http://10.0.0.5:9000", "BROWNOUT_TOKEN": "s3cret"})
    assert exp.target.url == "http://10.0.0.5:9000/predict"
    assert exp.proxies[0].token == "s3cret"
    assert "s3cret" not in repr(exp) and exp.redacted()["proxies"][0]["token"] == "***"
    tcp = load_experiment(TCP, env={"PORT": "9123"})
    assert tcp.target.url == "http://127.0.0.1:9123/predict"


def test_toxic_fault_step_validates_as_a_toxic() -> None:
    exp = load_experiment(TCP, env={})
    step = exp.method[0]
    assert isinstance(step, FaultStep) and step.is_toxic
    assert step.build() == LatencyToxic(latency=200, jitter=20)
    assert exp.proxy_for(step).admin == "http://127.0.0.1:8476"
    assert exp.load.to_shape() == StepsShape(start_rate=10, end_rate=40, step=10, step_duration=10)


def test_every_error_is_reported_at_once_with_position_and_path() -> None:
    got = [(e.line, e.column, e.field, e.message) for e in errors_of(INVALID, env={})]
    assert all(str(INVALID) == e.source for e in errors_of(INVALID, env={}))
    expected = [
        (4, 3, "target.url", "must be an http:// or https:// URL, got 'ftp://example.com'"),
        (7, 12, "proxies[0].token", "environment variable H4_UNSET_TOKEN is not set (write ${H4_UNSET_TOKEN:-default} to give a default)"),
        (10, 3, "load.rate", "must be > 0, got -5"),
        (11, 3, "load.duration", "not a duration: '10 parsecs' (write 250ms, 30s, 5m, 1h or seconds)"),
        (12, 3, "load.peak", "does not apply to shape 'constant' (it takes rate, duration)"),
        (14, 3, "steady_state.widnow", "unknown key (did you mean 'window'?)"),
        (16, 5, "steady_state.sla.error_rate", "must be <= 1, got 1.5"),
        (20, 14, "method[0].params.delay_ms", "must be >= 0"),
        (21, 13, "method[0].match.first_n", "must be >= 1, got 0"),
    ]
    assert got[: len(expected)] == expected
    rest = {(line, field): message for line, _, field, message in got[len(expected):]}
    assert rest[(22, "method[1].fault")].startswith("unknown fault type 'teleport'")
    assert rest[(25, "method[2].target")] == "give exactly one of 'process' or 'docker'"
    assert rest[(26, "method[3]")] == "a step needs a 'fault' or an 'action' key"
    assert len(got) == len(expected) + 3


def test_str_of_each_error_is_file_line_col_path_message() -> None:
    first = errors_of(INVALID, env={})[0]
    assert str(first) == f"{INVALID}:4:3: target.url: must be an http:// or https:// URL, got 'ftp://example.com'"


def test_set_overrides_values_by_dotted_path() -> None:
    exp = load_experiment(GOOD, env={}, overrides=[
        "load.rate=20", "method[0].params.delay_ms=50", "steady_state.sla.error_rate=0.05", "seed=99",
        "abort_when.latency_p99_ms=1000",
    ])
    assert exp.load.to_shape().rate == 20 and exp.seed == 99
    assert exp.method[0].params["delay_ms"] == 50  # type: ignore[union-attr]
    assert exp.steady_state.sla.error_rate == 0.05
    # Overrides can fix an invalid file, and a bad override is located in the file.
    errors = errors_of(GOOD, env={}, overrides=["method[0].params.delay_ms=-3"])
    assert [(e.field, e.line) for e in errors] == [("method[0].params.delay_ms", 39)]


def test_bad_override_syntax() -> None:
    errors = errors_of(GOOD, env={}, overrides=["no-equals-sign", "method[7].at=1s"])
    assert [e.source for e in errors] == ["--set", "--set"]
    assert "dotted.path=value" in errors[0].message and errors[1].field == "method[7]"


def test_time_scale_multiplies_every_duration_and_offset() -> None:
    exp = load_experiment(GOOD, env={}, time_scale=0.1)
    shape = exp.load.to_shape()
    assert (shape.at, shape.hold, shape.duration) == pytest.approx((6.0, 3.0, 18.0))
    assert exp.steady_state.window == pytest.approx(0.5)
    assert exp.method[0].at == pytest.approx(3.0) and exp.method[0].duration == pytest.approx(6.0)  # type: ignore[union-attr]
    assert exp.method[1].at == pytest.approx(10.0)
    assert exp.method[1].target.docker.restart_after == pytest.approx(2.0)  # type: ignore[union-attr]
    assert exp.recovery.within == pytest.approx(3.0)
    assert exp.load.timeout == pytest.approx(1.0)  # a default is a duration too
    # Rates and SLA bounds are not durations.
    assert shape.rate == 50 and exp.steady_state.sla.latency_p99_ms == 250
    assert [e.field for e in errors_of(GOOD, env={}, time_scale=0)] == ["--time-scale"]


def copy_good(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """The good file in ``tmp_path``, its data files still found (absolute), with edits."""
    text = GOOD.read_text().replace("data/", f"{DATA / 'data'}/")
    for old, new in replacements:
        text = text.replace(old, new)
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return path


def test_missing_data_file(tmp_path: Path) -> None:
    path = copy_good(tmp_path, (f"{DATA / 'data'}/transactions.jsonl", "none.jsonl"))
    [error] = errors_of(path, env={})
    assert (error.field, error.line) == ("load.payloads", 18)
    assert error.message == f"file not found: {tmp_path / 'none.jsonl'}"


def test_golden_file_content_errors_name_the_data_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "golden.jsonl").write_text('{"body": {}, "expected": 0.1, "label": 1}\n{"body": {}}\n')
    path = copy_good(tmp_path, (f"{DATA / 'data'}/golden.jsonl", "golden.jsonl"))
    [error] = errors_of(path, env={})
    assert error.field == "steady_state.predictions.golden"
    assert error.source == str(tmp_path / "golden.jsonl") and error.line == 2
    assert "needs 'body' and 'expected'" in error.message


def test_labelled_bounds_need_labels(tmp_path: Path) -> None:
    (tmp_path / "golden.jsonl").write_text('{"body": {}, "expected": 0.1}\n')
    path = copy_good(tmp_path, (f"{DATA / 'data'}/golden.jsonl", "golden.jsonl"))
    errors = errors_of(path, env={})
    assert [e.field for e in errors] == ["steady_state.predictions.min_recall", "steady_state.predictions.max_brier"]


def test_fault_steps_need_an_existing_proxy(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(TCP.read_text().replace("proxy: http://127.0.0.1:8476", "proxy: 5"))
    [error] = errors_of(path, env={})
    assert error.field == "method[0].proxy" and "no proxy 5" in error.message and error.line == 28


def test_load_shape_rules_of_the_load_generator_apply(tmp_path: Path) -> None:
    path = copy_good(tmp_path, ("at: 60s", "at: 170s"))
    [error] = errors_of(path, env={})
    assert error.field == "load.hold" and error.line == 16


def test_a_stress_run_needs_a_bound_to_break(tmp_path: Path) -> None:
    doc = {"version": 1, "title": "stress", "target": {"url": "http://127.0.0.1:9/"},
           "load": {"shape": "stress", "from": 10, "step": 10, "step_duration": "1s", "max": 50},
           "steady_state": {"sla": {}}}
    path = tmp_path / "stress.yaml"
    path.write_text(yaml.safe_dump(doc))
    [error] = errors_of(path, env={})
    assert error.field == "steady_state.sla" and error.message.startswith("stress needs an SLA to break")
    doc["steady_state"]["sla"] = {"min_throughput": 5}  # any bound of the SLA will do
    path.write_text(yaml.safe_dump(doc))
    assert load_experiment(path, env={}).steady_state.sla.min_throughput == 5


def test_schema_is_json_schema_with_the_top_level_keys() -> None:
    schema = experiment_json_schema()
    json.dumps(schema)  # serialisable
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "version", "title", "description", "seed", "target", "proxies", "load", "steady_state", "method",
        "abort_when", "safety", "recovery", "report", "demo", "tracing",
    }
    assert set(schema["required"]) == {"version", "title", "target", "load"}
    predictions = schema["$defs"]["Predictions"]["properties"]
    assert "schema" in predictions and "min_agreement" in predictions
    assert "from" in schema["$defs"]["RampLoad"]["properties"]


def test_schema_accepts_the_example_files_and_rejects_mistakes() -> None:
    validator = jsonschema.Draft202012Validator(experiment_json_schema())
    jsonschema.Draft202012Validator.check_schema(validator.schema)
    for path in (GOOD, TCP):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == []
    wrong = {tuple(e.path) for e in validator.iter_errors(yaml.safe_load(INVALID.read_text()))}
    # Editors flag the typo'd key, the bad load, the bound out of range, the unknown fault type,
    # the empty target and the step without fault/action (positions are the loader's job).
    assert wrong == {("load",), ("steady_state",), ("steady_state", "sla", "error_rate"),
                     ("method", 1), ("method", 2), ("method", 3)}
