"""Tracing's pieces that need no collector: traceparent, the sampling decision, settings and their errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import cast

import pytest
import yaml
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from faults.errors import InvalidInput
from proxy.config import RouteConfig, TracingConfig
from proxy.tracing import context
from proxy.tracing.context import (
    Sampler,
    format_traceparent,
    header_value,
    parse_traceparent,
)
from proxy.tracing.exporter import SpanExport
from proxy.tracing.observer import TracingObserver
from proxy.tracing.settings import resolve_tracing
from tests.conftest import BROWNOUT, REPO, free_port

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_traceparent_round_trip_and_what_is_refused() -> None:
    parent = parse_traceparent(VALID)
    assert parent is not None and parent.sampled
    assert format_traceparent(parent.trace_id, parent.span_id) == VALID.encode()
    assert parse_traceparent(VALID[:-2] + "00").sampled is False  # type: ignore[union-attr]
    assert parse_traceparent("01" + VALID[2:] + "-future") is not None  # a later version is read as 00
    for bad in (VALID.upper(), VALID + "-x", "ff" + VALID[2:], VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 32),
                VALID.replace("00f067aa0ba902b7", "0" * 16), VALID[:-1], VALID.replace("-", "_"), "", "00-zz"):
        assert parse_traceparent(bad) is None, bad


def test_header_lookup_ignores_case() -> None:
    headers = [(b"Host", b"x"), (b"TraceParent", VALID.encode()), (b"traceparent", b"second")]
    assert header_value(headers, b"traceparent") == VALID.encode() and header_value(headers, b"tracestate") is None


def test_the_ratio_decision_agrees_with_the_sdks_trace_id_ratio_sampler() -> None:
    sampler, sdk = Sampler(0.25, follow_parent=False), TraceIdRatioBased(0.25)
    kept = 0
    for _ in range(20_000):
        trace_id = sampler.new_trace()
        if trace_id:
            kept += 1
            assert sdk.should_sample(None, trace_id, "x").decision is Decision.RECORD_AND_SAMPLE
    assert 0.22 < kept / 20_000 < 0.28
    for trace_id in (1, (1 << 64) // 4 - 1, (1 << 64) // 4, (1 << 64) // 4 + 1, 7 << 64 | 12345):
        parent = parse_traceparent(format_traceparent(trace_id, 1, sampled=False))
        assert parent is not None
        expected = sdk.should_sample(None, trace_id, "x").decision is Decision.RECORD_AND_SAMPLE
        assert sampler.keeps(parent) is expected
    assert Sampler(0.0).new_trace() == 0 and Sampler(1.0).new_trace() != 0
    follow = Sampler(0.0)
    assert follow.keeps(parse_traceparent(VALID)) and not follow.keeps(parse_traceparent(VALID[:-2] + "00"))  # type: ignore[arg-type]


def test_counting_down_samples_at_the_ratio_and_its_ids_pass_the_ratio_rule() -> None:
    context._ids.seed(7)  # seeded: the counts below are fixed, the bounds generous
    sampler, sdk = Sampler(0.01, follow_parent=False), TraceIdRatioBased(0.01)
    gaps = [sampler.gap() for _ in range(20_000)]
    assert min(gaps) >= 1 and 95 < sum(gaps) / len(gaps) < 105  # geometric: mean 1 / ratio
    assert 0.009 < sum(g == 1 for g in gaps) / len(gaps) < 0.011  # P(the very next) = ratio, as a draw per trace
    for _ in range(2_000):
        trace_id = sampler.sampled_trace_id()
        assert trace_id & context.MASK_64 < sampler.bound and trace_id >> 64  # high bits drawn too
        assert sdk.should_sample(None, trace_id, "x").decision is Decision.RECORD_AND_SAMPLE
    assert Sampler(1.0).gap() == 1 and Sampler(0.0).gap() > 10 ** 18


def test_the_observer_samples_new_traces_at_the_ratio_and_follows_a_parents_flag() -> None:
    context._ids.seed(11)
    route = RouteConfig(name="r", kind="http", listen="127.0.0.1:1", upstream="http://127.0.0.1:2")
    observer = TracingObserver(route, cast(SpanExport, None), Sampler(0.05))
    kept = [observer.follows([], b"") for _ in range(40_000)]
    assert 1_700 < sum(kept) < 2_300  # 5 % of new traces, counted down rather than drawn
    unsampled, sampled = VALID[:-2].encode() + b"00", VALID.encode()
    for _ in range(1_000):  # a parent decides, and leaves the countdown where it was
        assert observer.follows([], sampled) and not observer.follows([], unsampled)
    assert sum(observer.follows([], b"not a traceparent") for _ in range(40_000)) > 1_500  # invalid: a new trace
    assert Sampler(0.0).gap() and not any(TracingObserver(route, cast(SpanExport, None), Sampler(0.0)).follows([], b"")
                                          for _ in range(10_000))


def test_settings_block_first_then_variables_then_defaults() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/", "OTEL_SERVICE_NAME": "env-name",
           "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    assert resolve_tracing(None, {}, default_service="brownout") is None
    by_env = resolve_tracing(None, env, default_service="brownout")
    assert by_env is not None and by_env.endpoint == "http://collector:4318/v1/traces"
    assert (by_env.sample_ratio, by_env.follow_parent, by_env.service_name) == (0.1, False, "env-name")
    traces = resolve_tracing(None, {**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t:1/custom"}, default_service="b")
    assert traces is not None and traces.endpoint == "https://t:1/custom"
    block = TracingConfig(otlp_endpoint="http://jaeger:4318/v1/traces", sample_ratio=0.5, link_template="http://j/{trace_id}")
    settings = resolve_tracing(block, env, default_service="brownout")
    assert settings is not None and settings.endpoint == "http://jaeger:4318/v1/traces"
    assert (settings.sample_ratio, settings.follow_parent, settings.service_name) == (0.5, True, "env-name")
    assert settings.link("ab") == "http://j/ab"
    assert resolve_tracing(TracingConfig(enabled=False), env, default_service="b") is None
    assert resolve_tracing(None, {**env, "OTEL_SDK_DISABLED": "true"}, default_service="b") is None
    assert resolve_tracing(None, {**env, "OTEL_TRACES_EXPORTER": "none"}, default_service="b") is None
    default = resolve_tracing(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, default_service="runner")
    assert default is not None and (default.sample_ratio, default.follow_parent, default.service_name) == (1.0, True, "runner")
    off = resolve_tracing(None, {**env, "OTEL_TRACES_SAMPLER": "parentbased_always_off"}, default_service="b")
    assert off is not None and (off.sample_ratio, off.follow_parent) == (0.0, True)


@pytest.mark.parametrize(("env", "field"), [
    ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
])
def test_bad_variables_are_named(env: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        resolve_tracing(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **env}, default_service="b")
    assert raised.value.field == field


def test_a_block_without_an_endpoint_anywhere_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="no endpoint") as raised:
        resolve_tracing(TracingConfig(sample_ratio=0.5), {}, default_service="b")
    assert raised.value.field == "tracing.otlp_endpoint"


def _run_proxy(tmp_path: Path, tracing: dict[str, object], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump({"admin": {"listen": f"127.0.0.1:{free_port()}"}, "tracing": tracing,
                                    "routes": [{"name": "api", "listen": f"127.0.0.1:{free_port()}",
                                                "upstream": "http://127.0.0.1:9"}]}, sort_keys=False))
    return subprocess.run([*BROWNOUT, "proxy", "--config", str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("tracing", "message"), [
    ({"otlp_endpoint": "http://c:4318", "sample_ratio": 2}, "proxy.yaml:5:3: tracing.sample_ratio: must be <= 1, got 2"),
    ({"otlp_endpoint": "collector:4318"}, "tracing.otlp_endpoint"),
    ({"otlp_endpoint": "http://c:4318", "link_template": "http://j/{trace}"}, "unknown placeholder {trace}"),
    ({"otlp_endpoint": "http://c:4318", "queue_size": 0}, "tracing.queue_size"),
])
def test_bad_tracing_config_exits_3_naming_the_key(tmp_path: Path, tracing: dict[str, object], message: str) -> None:
    done = _run_proxy(tmp_path, tracing)
    assert done.returncode == 3, done.stderr
    assert message in done.stderr and "proxy.yaml:" in done.stderr


def test_a_bad_sampler_variable_exits_3_naming_it(tmp_path: Path) -> None:
    done = _run_proxy(tmp_path, {"otlp_endpoint": "http://127.0.0.1:9"}, {"OTEL_TRACES_SAMPLER": "xray"})
    assert done.returncode == 3 and "OTEL_TRACES_SAMPLER: unsupported sampler 'xray'" in done.stderr, done.stderr
