"""The proxy's traces: ``brownout proxy --config`` with tracing on, exporting to a real OTLP/HTTP receiver."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp

from tests.conftest import free_port
from tests.observe.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.proxy.conftest import upstream  # noqa: F401  (fixture)

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def _start(proxy_factory: Any, upstream: Any, tracing: dict[str, Any] | None, env: dict[str, str] | None = None) -> Any:
    config: dict[str, Any] = {"routes": [{"name": "api", "upstream": upstream[1]}]}
    if tracing is not None:
        config["tracing"] = {"batch_delay": "100ms", **tracing}
    return proxy_factory(config, env)


def _upstream_saw(answer: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in answer["headers"] if k.lower() == name]


async def _get(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with session.get(url, headers=headers or {}) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.read())


def _by_kind(spans: list[ReceivedSpan], trace_id: str) -> dict[str, list[ReceivedSpan]]:
    kinds: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        if span.trace_id == trace_id:
            kinds.setdefault(span.kind, []).append(span)
    return kinds


async def test_a_request_makes_a_server_span_and_a_client_span_under_it(proxy_factory: Any, upstream: Any,
                                                                         otlp: OtlpReceiver) -> None:
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": otlp.url, "sample_ratio": 1.0})
    host, port = proxy.routes["api"].split(":")
    async with aiohttp.ClientSession() as session:
        status, answer = await _get(session, proxy.url("api", "/echo/items?q=1"), {"User-Agent": "tracing-test/1"})
    assert status == 200
    await otlp.wait_for(lambda spans: {s.kind for s in spans} >= {"SERVER", "CLIENT"})
    [server] = [s for s in otlp.spans if s.kind == "SERVER"]
    [client] = [s for s in otlp.spans if s.kind == "CLIENT"]
    assert server.parent_span_id is None and server.name == "GET" and server.service_name == "brownout"
    assert server.attributes == {
        "http.request.method": "GET", "url.path": "/echo/items", "url.scheme": "http", "server.address": host,
        "server.port": int(port), "client.address": "127.0.0.1", "network.protocol.version": "1.1",
        "user_agent.original": "tracing-test/1", "http.response.status_code": 200, "brownout.route": "api",
        "brownout.request_id": server.attributes["brownout.request_id"],
    }
    assert client.trace_id == server.trace_id and client.parent_span_id == server.span_id
    assert client.attributes["url.full"] == upstream[1] + "/echo/items?q=1"
    assert client.attributes["server.port"] == int(upstream[1].rsplit(":", 1)[1])
    assert client.attributes["http.response.status_code"] == 200 and client.status == "UNSET"
    assert server.start_unix_nano <= client.start_unix_nano <= client.end_unix_nano <= server.end_unix_nano
    # The upstream was told the client span is its parent: the user's own spans nest under it.
    assert _upstream_saw(answer, "traceparent") == [f"00-{server.trace_id}-{client.span_id}-01"]
    assert otlp.encodings[0] == "gzip"


async def test_an_incoming_traceparent_is_continued_and_the_client_span_is_the_upstreams_parent(
        proxy_factory: Any, upstream: Any, otlp: OtlpReceiver) -> None:
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": otlp.url, "sample_ratio": 1.0})
    incoming = {"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01", "tracestate": "vendor=abc,other=1"}
    async with aiohttp.ClientSession() as session:
        _, answer = await _get(session, proxy.url("api", "/echo"), incoming)
    await otlp.wait_for(lambda spans: len(_by_kind(spans, PARENT_TRACE)) == 2)
    kinds = _by_kind(otlp.spans, PARENT_TRACE)
    [server], [client] = kinds["SERVER"], kinds["CLIENT"]
    assert server.parent_span_id == PARENT_SPAN and client.parent_span_id == server.span_id
    assert server.trace_state == "vendor=abc,other=1"
    assert _upstream_saw(answer, "traceparent") == [f"00-{PARENT_TRACE}-{client.span_id}-01"]
    assert _upstream_saw(answer, "tracestate") == ["vendor=abc,other=1"]


async def test_an_invalid_traceparent_starts_a_new_trace_and_upstream_gets_only_ours(
        proxy_factory: Any, upstream: Any, otlp: OtlpReceiver) -> None:
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": otlp.url, "sample_ratio": 1.0})
    async with aiohttp.ClientSession() as session:
        _, answer = await _get(session, proxy.url("api", "/echo"), {"traceparent": "00-not-a-trace-context"})
    await otlp.wait_for(lambda spans: {s.kind for s in spans} >= {"SERVER", "CLIENT"})
    [server] = [s for s in otlp.spans if s.kind == "SERVER"]
    [client] = [s for s in otlp.spans if s.kind == "CLIENT"]
    assert server.parent_span_id is None and client.trace_id == server.trace_id
    assert _upstream_saw(answer, "traceparent") == [f"00-{server.trace_id}-{client.span_id}-01"]


async def test_a_fault_marks_the_server_span_with_its_attributes_and_an_event_at_injection(
        proxy_factory: Any, upstream: Any, otlp: OtlpReceiver) -> None:
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": otlp.url, "sample_ratio": 1.0})
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.admin + "/faults", json={"type": "latency", "route": "api", "id": "slow",
                                                               "params": {"delay_ms": 150}}) as r:
            assert r.status == 201
        async with session.post(proxy.admin + "/faults", json={
                "type": "truncate", "route": "api", "id": "cut", "params": {"after_bytes": 10, "content_length": "corrected"}}) as r:
            assert r.status == 201
        status, body = await _get(session, proxy.url("api", "/bytes/5000"))
    assert status == 200 and len(body) == 10
    await otlp.wait_for(lambda spans: any(s.kind == "SERVER" for s in spans))
    [server] = [s for s in otlp.spans if s.kind == "SERVER"]
    assert server.attributes["brownout.fault.id"] == "slow,cut"
    assert server.attributes["brownout.fault.type"] == "latency,truncate"
    assert server.attributes["brownout.fault.route"] == "api"
    events = {e.attributes["brownout.fault.id"]: e for e in server.events}
    assert {e.name for e in server.events} == {"brownout.fault.injected"}
    slow, cut = events["slow"], events["cut"]
    assert slow.attributes["brownout.fault.type"] == "latency" and slow.attributes["brownout.fault.delay_ms"] == 150
    assert slow.attributes["brownout.fault.hook"] == "on_request"
    assert cut.attributes["brownout.fault.bytes_cut"] == 4990 and cut.attributes["brownout.fault.bytes_kept"] == 10
    # Each at the moment it acted: the delay at the start, the cut after it, on the response.
    assert server.start_unix_nano <= slow.time_unix_nano
    # 2 ms of slack: the loop's timers run on the monotonic clock (to the millisecond under
    # uvloop) and may fire a fraction early against the wall-clock times the spans carry
    slept = slow.time_unix_nano + 150_000_000 - 2_000_000
    assert slept <= cut.time_unix_nano <= server.end_unix_nano
    [client] = [s for s in otlp.spans if s.kind == "CLIENT"]
    assert client.start_unix_nano >= slept  # upstream was called after the delay


async def test_a_request_the_fault_answered_has_no_client_span(proxy_factory: Any, upstream: Any,
                                                               otlp: OtlpReceiver) -> None:
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": otlp.url, "sample_ratio": 1.0})
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.admin + "/faults", json={"type": "error", "route": "api", "id": "boom",
                                                               "params": {"status": 503}}) as r:
            assert r.status == 201
        status, _ = await _get(session, proxy.url("api", "/echo"), {"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"})
        assert status == 503
        async with session.delete(proxy.admin + "/faults/boom") as r:
            assert r.status in (200, 204)
        await _get(session, proxy.url("api", "/echo"))  # traced too: once it is in, the first one was exported
    await otlp.wait_for(lambda spans: len([s for s in spans if s.kind == "SERVER"]) == 2)
    kinds = _by_kind(otlp.spans, PARENT_TRACE)
    assert set(kinds) == {"SERVER"}
    [server] = kinds["SERVER"]
    assert server.attributes["http.response.status_code"] == 503 and server.attributes["error.type"] == "503"
    assert server.status == "ERROR"
    [event] = server.events
    assert event.attributes["brownout.fault.id"] == "boom" and event.attributes["brownout.fault.status"] == 503


async def test_sample_ratio_zero_traces_nothing_new_and_passes_traceparent_on_unchanged(
        proxy_factory: Any, upstream: Any, otlp: OtlpReceiver) -> None:
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": otlp.url, "sample_ratio": 0})
    unsampled = f"00-{PARENT_TRACE}-{PARENT_SPAN}-00"
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            _, answer = await _get(session, proxy.url("api", "/echo"))
            assert _upstream_saw(answer, "traceparent") == []
        _, answer = await _get(session, proxy.url("api", "/echo"), {"traceparent": unsampled, "tracestate": "a=b"})
        assert _upstream_saw(answer, "traceparent") == [unsampled] and _upstream_saw(answer, "tracestate") == ["a=b"]
        # A sampled parent is still followed (parent-based): once its spans are in, nothing else came.
        sampled_trace = "0af7651916cd43dd8448eb211c80319c"
        await _get(session, proxy.url("api", "/echo"), {"traceparent": f"00-{sampled_trace}-b7ad6b7169203331-01"})
    await otlp.wait_for(lambda spans: len(spans) >= 2)
    await asyncio.sleep(0.3)
    assert {s.trace_id for s in otlp.spans} == {sampled_trace}
    assert sorted(s.kind for s in otlp.spans) == ["CLIENT", "SERVER"]


async def test_the_otel_variables_configure_tracing_and_the_config_wins_over_them(
        proxy_factory: Any, upstream: Any, otlp: OtlpReceiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_SERVICE_NAME": "edge-proxy",
           "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.0"}
    by_env = _start(proxy_factory, upstream, None, {**env, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    by_config = _start(proxy_factory, upstream, {"service_name": "from-config"}, env)  # endpoint from the variable
    dark = _start(proxy_factory, upstream, {"enabled": False}, env)
    async with aiohttp.ClientSession() as session:
        for proxy in (dark, by_env, by_config):
            status, _ = await _get(session, proxy.url("api", "/echo"))
            assert status == 200
    await otlp.wait_for(lambda spans: {s.service_name for s in spans} == {"edge-proxy", "from-config"}, timeout_s=15)
    await asyncio.sleep(0.3)
    assert len(otlp.spans) == 4  # two per traced proxy, none from the one with enabled: false


async def test_a_dead_collector_never_blocks_forwarding(proxy_factory: Any, upstream: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": dead, "sample_ratio": 1.0, "queue_size": 16,
                                             "export_timeout": "30s"})
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            started = time.monotonic()
            status, _ = await _get(session, proxy.url("api", "/echo"))
            latencies.append(time.monotonic() - started)
            assert status == 200
        async with session.get(proxy.admin + "/metrics") as r:
            metrics = await r.text()
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.2, latencies[len(latencies) // 2]  # generous: ~1 ms when idle
    dropped = next(float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith("brownout_trace_spans_dropped_total"))
    assert dropped >= 600 - 16 - 512  # 600 spans into a queue of 16 whose export is stuck
    started = time.monotonic()
    assert proxy.stop() == 0
    assert time.monotonic() - started < 12  # the flush gives up after 5 s
    events = {e["event"]: e for e in proxy.log_events()}
    assert events["trace_spans_dropped"]["queue_size"] == 16
    assert events["trace_export_stopped"]["dropped"] >= dropped


def _reset_connection(address: str) -> None:
    host, port = address.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.recv(1024)
    except OSError:
        pass


async def test_a_connection_phase_fault_gets_a_span_of_its_own(proxy_factory: Any, upstream: Any,
                                                               otlp: OtlpReceiver) -> None:
    proxy = _start(proxy_factory, upstream, {"otlp_endpoint": otlp.url})
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.admin + "/faults", json={"type": "reset", "route": "api", "id": "rst",
                                                               "params": {"phase": "connection"}}) as r:
            assert r.status == 201
    await asyncio.to_thread(_reset_connection, proxy.routes["api"])
    await otlp.wait_for(lambda spans: len(spans) >= 1)
    [span] = otlp.spans
    assert span.name == "brownout.connection" and span.kind == "INTERNAL" and span.parent_span_id is None
    assert span.attributes["brownout.fault.id"] == "rst" and span.attributes["brownout.route"] == "api"
    [event] = span.events
    assert event.name == "brownout.fault.injected" and event.attributes["brownout.fault.phase"] == "connection"
