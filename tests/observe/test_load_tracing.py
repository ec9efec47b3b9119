"""``brownout load`` on its own, traced through the standard OTEL variables: its sampled requests carry
a ``traceparent`` naming the CLIENT span it exports; without the variables, no header and no span."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from proxy.tracing.context import parse_traceparent
from tests.conftest import BROWNOUT, serve_app
from tests.observe.otlp_receiver import OtlpReceiver


async def _load(url: str, env: dict[str, str]) -> None:
    """``brownout load`` as users run it, 40 requests over 1 s; it must exit 0."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env
    proc = await asyncio.create_subprocess_exec(
        *BROWNOUT, "load", url, "--rate", "40", "--duration", "1s", "--no-live", env=environ,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()


async def test_standalone_load_traces_its_sampled_requests_through_the_otel_variables(otlp: OtlpReceiver) -> None:
    seen: list[str | None] = []

    async def predict(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent"))
        return web.json_response({"score": 0.5})

    app = web.Application()
    app.router.add_get("/predict", predict)
    runner, base = await serve_app(app)
    try:
        await _load(f"{base}/predict", {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_TRACES_SAMPLER": "traceidratio",
                                        "OTEL_TRACES_SAMPLER_ARG": "0.5", "OTEL_BSP_SCHEDULE_DELAY": "100"})
        parents = [parse_traceparent(h) for h in seen if h is not None]
        assert len(seen) == 40 and 0 < len(parents) < 40  # sampled at 0.5: some, not all (all or none: 2⁻³⁹)
        assert all(p is not None and p.sampled for p in parents)
        # The load exits once its spans are flushed: every header's span is at the receiver already.
        spans = {(s.trace_id, s.span_id): s for s in otlp.spans}
        assert len(spans) == len(parents)
        for parent in parents:
            assert parent is not None
            span = spans[(f"{parent.trace_id:032x}", f"{parent.span_id:016x}")]
            assert (span.kind, span.service_name, span.scope, span.parent_span_id) == \
                ("CLIENT", "brownout-load", "brownout.load", None)
            assert span.attributes["http.request.method"] == "GET"
            assert span.attributes["url.full"] == f"{base}/predict"
            assert span.attributes["http.response.status_code"] == 200

        seen.clear()
        exports = otlp.exports
        await _load(f"{base}/predict", {})
        assert seen == [None] * 40 and otlp.exports == exports
    finally:
        await runner.cleanup()
