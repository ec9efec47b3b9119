"""``brownout run`` traced: the experiment span, its phases and injections, the load's sampled requests
continued by a traced proxy, and the ids in the journal and the report. A real OTLP receiver."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serve_app
from tests.observe.otlp_receiver import OtlpReceiver
from tests.runner.conftest import Stage, brownout_run, stage  # noqa: F401  (fixture)
from tests.runner.model_server import app, write_data

LINK = "http://jaeger:16686/trace/{trace_id}?uiFind={span_id}"


@pytest.fixture
async def traced_stage(tmp_path: Path, proxy_factory: Any, otlp: OtlpReceiver) -> AsyncIterator[Stage]:
    runner, url = await serve_app(app())
    write_data(tmp_path)
    # Ratio 0: the proxy traces only what arrives sampled (the load generator's sampled requests).
    proxy = proxy_factory({"routes": [{"name": "model", "upstream": url}], "fault_ttl": {"default": "1m", "max": "10m"},
                           "tracing": {"otlp_endpoint": otlp.url, "sample_ratio": 0, "batch_delay": "200ms"}})
    yield Stage(tmp_path, proxy, url)
    await runner.cleanup()


async def test_a_traced_run_has_an_experiment_span_phases_injections_and_ids_in_the_journal(
        traced_stage: Stage, otlp: OtlpReceiver) -> None:
    stage = traced_stage
    path = stage.experiment(
        method=[{"fault": "latency", "route": "model", "at": "1s", "duration": "1s", "params": {"delay_ms": 20}}],
        tracing={"otlp_endpoint": otlp.url, "sample_ratio": 0.5, "link_template": LINK})
    code, out, err = await brownout_run(str(path))
    assert code == 0, out + err
    journal = stage.journal()
    trace_id = journal["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    [injection] = journal["injections"]
    assert injection["trace_id"] == trace_id and re.fullmatch(r"[0-9a-f]{16}", injection["span_id"])
    assert injection["trace_url"] == LINK.format(trace_id=trace_id, span_id=injection["span_id"])

    # The run flushed before it exited: its spans are all in.
    run = otlp.trace(trace_id)
    [experiment] = [s for s in run if s.parent_span_id is None]
    assert experiment.name == "brownout run: test experiment" and experiment.service_name == "brownout-runner"
    assert experiment.attributes["brownout.outcome"] == "held"
    assert journal["trace_url"] == LINK.format(trace_id=trace_id, span_id=experiment.span_id)
    children = {s.name: s for s in run if s.parent_span_id == experiment.span_id}
    assert set(children) == {"phase baseline", "phase method", "phase recovery", "fault latency@model"}
    baseline, method, recovery = children["phase baseline"], children["phase method"], children["phase recovery"]
    assert baseline.end_unix_nano <= method.start_unix_nano + 1_000_000 and method.end_unix_nano <= recovery.start_unix_nano + 1_000_000
    fault = children["fault latency@model"]
    assert fault.span_id == injection["span_id"] and fault.attributes["brownout.fault.id"] == injection["id"]
    assert fault.attributes["brownout.fault.type"] == "latency" and fault.attributes["brownout.fault.route"] == "model"
    assert 0.8e9 < fault.end_unix_nano - fault.start_unix_nano < 2.5e9  # added at 1s, removed at 2s
    assert method.start_unix_nano <= fault.start_unix_nano <= fault.end_unix_nano <= method.end_unix_nano + 50_000_000

    # Sampled load requests: CLIENT spans of their own traces, linked to the experiment, each
    # continued by the proxy (its SERVER span's parent), faulted ones naming the run's fault.
    await otlp.wait_for(lambda spans: any(s.service_name == "brownout" for s in spans))
    loads = {s.span_id: s for s in otlp.spans if s.service_name == "brownout-runner" and s.kind == "CLIENT"}
    assert loads and all(s.links == ((trace_id, experiment.span_id),) for s in loads.values())
    await otlp.wait_for(lambda spans: len([s for s in spans if s.kind == "SERVER"]) >= len(loads))
    servers = [s for s in otlp.spans if s.service_name == "brownout" and s.kind == "SERVER"]
    assert len(servers) == len(loads)  # ratio 0 at the proxy: exactly the requests the generator sampled
    for server in servers:
        client = loads[server.parent_span_id]  # type: ignore[index]
        assert client.trace_id == server.trace_id != trace_id
        assert client.attributes["url.full"] == stage.target
    faulted = [s for s in servers if s.attributes.get("brownout.fault.id") == injection["id"]]
    assert faulted and all(e.attributes["brownout.fault.delay_ms"] == 20 for s in faulted for e in s.events)
    # The fault is in force from a moment before its add returned to a moment after its removal began.
    slack = 300_000_000
    assert all(fault.start_unix_nano - slack <= s.start_unix_nano <= fault.end_unix_nano + slack for s in faulted)

    html = (stage.folder / "reports" / "report.html").read_text()
    assert f'href="{injection["trace_url"]}"'.replace("&", "&amp;") in html


async def test_the_otel_variables_trace_a_run_and_a_bad_one_is_invalid_input(stage: Stage, otlp: OtlpReceiver,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "game-day")
    path = stage.experiment(load={"shape": "constant", "rate": 20, "duration": "1s", "payloads": "payloads.jsonl"})
    code, out, err = await brownout_run(str(path))
    assert code == 0, out + err
    trace_id = stage.journal()["trace_id"]
    [experiment] = [s for s in otlp.trace(trace_id) if s.parent_span_id is None]
    assert experiment.service_name == "game-day"
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "2")
    code, out, err = await brownout_run(str(path))
    assert code == 3, out + err
    assert "OTEL_TRACES_SAMPLER_ARG" in stage.journal()["status"]["reason"]
