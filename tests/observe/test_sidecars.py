"""The per-window reader of every sidecar's /metrics, against real ``brownout proxy`` processes
and a real client: counts equal what went through, restarts and unreachable sidecars are no crash."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from brownout.observe.sidecars import SidecarReader, SidecarWindow, increase, parse_metrics
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.observations import Measurement, ObservedWindow
from brownout.experiment.steady import SteadyState
from brownout.windows import WindowStats
from faults.errors import Unreachable
from tests.conftest import ProxyProcess, free_port, serve_app


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    async def status(request: web.Request) -> web.Response:
        return web.json_response({"ok": True}, status=int(request.match_info["code"]))

    app = web.Application()
    app.router.add_get("/status/{code}", status)
    runner, url = await serve_app(app)
    yield url
    await runner.cleanup()


@pytest.fixture
def sidecar(upstream: str, proxy_factory: Callable[..., ProxyProcess]) -> Callable[[], ProxyProcess]:
    """Starts (and restarts) a proxy on the same fixed ports: routes ``model`` and ``worker``."""
    config: dict[str, Any] = {"admin": {"listen": f"127.0.0.1:{free_port()}"},
                              "routes": [{"name": "model", "upstream": upstream, "listen": f"127.0.0.1:{free_port()}"},
                                         {"name": "worker", "upstream": upstream,
                                          "listen": f"127.0.0.1:{free_port()}"}]}
    return lambda: proxy_factory(config)


async def send(proxy: ProxyProcess, route: str, statuses: dict[int, int]) -> None:
    async with aiohttp.ClientSession() as client:
        for code, n in statuses.items():
            for _ in range(n):
                async with client.get(proxy.url(route, f"/status/{code}")) as resp:
                    assert resp.status == code
                    await resp.read()


async def test_window_counts_equal_what_a_real_client_sent(sidecar: Callable[[], ProxyProcess]) -> None:
    proxy = sidecar()
    reader = SidecarReader([proxy.admin + "/"])  # a trailing slash is the same sidecar
    await reader.start()
    try:
        await send(proxy, "model", {200: 12, 503: 5})
        await send(proxy, "worker", {200: 3, 429: 4})
        w0 = await reader.read_now(0)
        assert w0.requests("model") == 17 and w0.requests("worker") == 7 and w0.requests() == 24
        assert w0.by_status("model") == {"200": 12, "503": 5} and w0.by_status() == {"200": 15, "503": 5, "429": 4}
        assert w0.requests("worker", status=429) == 4 and w0.requests("model", sidecar=proxy.admin) == 17
        assert w0.counter("brownout_requests_total", route="model", status="503") == 5
        assert w0.requests("model", sidecar="http://elsewhere:1") is None  # no such sidecar: no data
        assert reader.deltas(0) is w0

        # The next window counts only its own requests.
        await send(proxy, "model", {200: 2})
        w1 = await reader.read_now(1)
        assert w1.by_status("model") == {"200": 2} and w1.requests("worker") == 0
        # The journal's view of it, and a phase as the sum of its windows.
        [(admin, row)] = w1.as_dict().items()
        assert admin == proxy.admin and row["ok"] and row["routes"]["model"] == {"requests": 2, "statuses": {"200": 2}}
        phase = w0.merge(w1)
        assert phase.requests("model") == 19 and phase.by_status("worker") == {"200": 3, "429": 4}
    finally:
        await reader.close()


async def test_a_restarted_sidecar_counts_from_its_restart(sidecar: Callable[[], ProxyProcess]) -> None:
    proxy = sidecar()
    reader = SidecarReader([proxy.admin])
    await reader.start()
    try:
        await send(proxy, "model", {200: 10})
        assert (await reader.read_now(0)).requests("model") == 10
        proxy.stop()
        proxy = sidecar()  # the same ports, a new process: its counters start at 0
        await send(proxy, "model", {200: 3})
        w1 = await reader.read_now(1)
        [delta] = w1.sidecars
        assert delta.restarted and "restarted" in (delta.note or "")
        assert w1.requests("model") == 3  # not 3 - 10
        await send(proxy, "model", {200: 1})
        w2 = await reader.read_now(2)
        assert w2.requests("model") == 1 and not w2.sidecars[0].restarted
    finally:
        await reader.close()


async def test_an_unreachable_sidecar_has_no_data_and_the_others_go_on(sidecar: Callable[[], ProxyProcess],
                                                                       upstream: str,
                                                                       proxy_factory: Callable[..., ProxyProcess]) -> None:
    flaky = sidecar()
    steady = proxy_factory({"routes": [{"name": "model", "upstream": upstream}]})
    reader = SidecarReader([flaky.admin, steady.admin], timeout_s=1.0)
    await reader.start()
    try:
        flaky.stop(signal.SIGKILL)
        await send(steady, "model", {200: 4})
        w0 = await reader.read_now(0)  # no exception: that sidecar has no data, the other counts
        gone = next(s for s in w0.sidecars if s.sidecar == flaky.admin)
        assert gone.counters is None and "unreachable" in (gone.note or "")
        assert w0.requests("model") == 4 and w0.requests("model", sidecar=flaky.admin) is None
        assert w0.as_dict()[flaky.admin]["ok"] is False

        flaky = sidecar()
        await send(flaky, "model", {200: 2})
        w1 = await reader.read_now(1)  # back, but the window's start was not read: still no data
        assert w1.requests("model", sidecar=flaky.admin) is None and w1.requests("model") == 0
        await send(flaky, "model", {200: 5})
        w2 = await reader.read_now(2)
        assert w2.requests("model", sidecar=flaky.admin) == 5
        phase = w0.merge(w1).merge(w2)
        assert phase.as_dict()[flaky.admin]["windows_without_data"] == 2
    finally:
        await reader.close()


async def test_an_unreachable_sidecar_at_preflight_stops_the_run() -> None:
    reader = SidecarReader([f"http://127.0.0.1:{free_port()}"], timeout_s=1.0)
    with pytest.raises(Unreachable, match=r"sidecar http://127\.0\.0\.1:\d+: /metrics is unreachable"):
        await reader.start()
    await reader.close()


def test_counters_are_parsed_and_a_decrease_is_a_restart() -> None:
    before = parse_metrics('# TYPE brownout_requests_total counter\n'
                           'brownout_requests_total{route="a",status="200"} 10\n'
                           'brownout_requests_total{route="b",status="200"} 4\n'
                           '# TYPE brownout_active_faults gauge\nbrownout_active_faults{route="a"} 1\n')
    assert set(before.counters) == {("brownout_requests_total", (("route", "a"), ("status", "200"))),
                                    ("brownout_requests_total", (("route", "b"), ("status", "200")))}
    grown = parse_metrics('# TYPE brownout_requests_total counter\nbrownout_requests_total{route="a",status="200"} 15\n'
                          'brownout_requests_total{route="b",status="200"} 4\n'
                          'brownout_requests_total{route="b",status="500"} 2\n')
    counts, restarted = increase(before, grown)
    assert not restarted and sorted(counts.values()) == [0, 2, 5]
    fell = parse_metrics('brownout_requests_total{route="a",status="200"} 3\n')  # untyped: a counter by its name
    counts, restarted = increase(before, fell)
    assert restarted and list(counts.values()) == [3]
    # A new process that already counted past the old one's total: its start time tells.
    started = '# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n'
    old = parse_metrics(started.format(100) + 'brownout_requests_total{route="a",status="200"} 10\n')
    new = parse_metrics(started.format(160) + 'brownout_requests_total{route="a",status="200"} 15\n')
    assert old.started_at == 100 and increase(old, new) == ({("brownout_requests_total", (("route", "a"),
                                                                                        ("status", "200"))): 15}, True)


async def test_a_judge_turns_the_counters_into_verdicts(sidecar: Callable[[], ProxyProcess]) -> None:
    """How fleet SLIs and retry amplification plug in: a judge gets the deltas and the load's figures."""
    proxy = sidecar()

    def amplification(window: SidecarWindow, stats: WindowStats) -> list[Measurement]:
        arrivals = window.requests("worker")
        value = None if arrivals is None or not stats.sent else arrivals / stats.sent
        return [Measurement("worker_amplification", value, 1.5, "<=", subject="worker")]

    reader = SidecarReader([proxy.admin], judges=[amplification])
    checker = SteadyStateChecker(SteadyState(window=1.0))
    await reader.start()
    try:
        await send(proxy, "worker", {200: 3})  # 3 arrivals for 0 sends of the load generator: no data
        checker.feed_observation(await reader.observe(ObservedWindow(0, 0.0, 1.0, 0.0, 1.0)))
        [verdict] = checker.close_window(0, phase="baseline").verdicts
        assert verdict.sli == "worker_amplification" and verdict.no_data and verdict.ok
        assert checker.results[0].as_dict()["sidecars"][proxy.admin]["routes"]["worker"]["requests"] == 3
    finally:
        await reader.close()
