"""One trace across the demo stack behind the proxy: load client → proxy → model API → proxy → feature
store and GPU worker, every parent link right. The services are real processes, tracing on through
the standard OTEL variables; the receiver is a real OTLP/HTTP endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from brownout.demo.game_day import game_day
from brownout.library import packaged_dir
from brownout.load.client import parse_target
from brownout.load.generator import run_load
from brownout.load.payloads import PayloadSource
from brownout.load.shapes import ConstantShape
from brownout.load.tracing import LoadTracing
from proxy.tracing.context import Sampler
from proxy.tracing.exporter import SpanExport
from proxy.tracing.settings import resolve_tracing
from tests.observe.otlp_receiver import OtlpReceiver, ReceivedSpan


def _one_child(spans: list[ReceivedSpan], parent: ReceivedSpan, service: str, kind: str,
               route: str | None = None) -> ReceivedSpan:
    found = [s for s in spans if s.parent_span_id == parent.span_id and s.service_name == service and s.kind == kind
             and (route is None or s.attributes.get("brownout.route") == route)]
    assert len(found) == 1, (parent.name, service, kind, route, [(s.service_name, s.name, s.kind) for s in spans])
    return found[0]


async def test_one_trace_crosses_client_proxy_model_api_proxy_feature_store_and_worker(
        tmp_path: Path, demo_cache: Path, otlp: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Transactions the warm-up did not score, so the cache has no answer and every hop is taken.
    corpus = tmp_path / "payloads.jsonl"
    corpus.write_text("\n".join((packaged_dir() / "data" / "transactions.jsonl").read_text().splitlines()[300:303]) + "\n")
    async with game_day(demo_cache) as day:
        settings = resolve_tracing(None, {**env, "OTEL_SERVICE_NAME": "load-client"}, default_service="x")
        assert settings is not None
        export = SpanExport(settings, env)
        target = day.target + "/predict"
        tracing = LoadTracing(export, Sampler(1.0), parse_target(target))
        shape = ConstantShape(rate=3, duration=1.0)
        summary = await run_load(target, shape, PayloadSource.from_file(corpus), connections=1, tracing=tracing)
        assert summary.sent >= 2 and summary.total.errors == 0
        export.close()
        await otlp.wait_for(lambda spans: len({s.trace_id for s in spans if s.service_name == "brownout-demo-gpu-worker"
                                               and s.kind == "SERVER"}) >= 1, timeout_s=20)
    [client, *_] = sorted((s for s in otlp.spans if s.service_name == "load-client"), key=lambda s: s.start_unix_nano)
    trace = otlp.trace(client.trace_id)
    assert client.parent_span_id is None and client.kind == "CLIENT"
    entry = _one_child(trace, client, "brownout", "SERVER", "model-api")
    to_api = _one_child(trace, entry, "brownout", "CLIENT", "model-api")
    api = _one_child(trace, to_api, "brownout-demo-model-api", "SERVER")
    assert api.attributes["http.route"] == "/predict" and api.attributes["http.response.status_code"] == 200
    calls = [s for s in trace if s.parent_span_id == api.span_id]
    assert {s.kind for s in calls} == {"CLIENT"} and len(calls) == 2, [(s.name, s.attributes.get("url.full")) for s in calls]
    by_route = {}
    for call in calls:
        hop = _one_child(trace, call, "brownout", "SERVER")
        by_route[hop.attributes["brownout.route"]] = _one_child(trace, _one_child(trace, hop, "brownout", "CLIENT"),
                                                                 f"brownout-demo-{hop.attributes['brownout.route']}",
                                                                 "SERVER")
    assert set(by_route) == {"feature-store", "gpu-worker"}
    assert by_route["feature-store"].attributes["http.route"] == "/get-online-features"
    assert by_route["gpu-worker"].attributes["http.route"] == "/v1/score"
    assert len(trace) == 12  # nothing else in it: every span above, once
