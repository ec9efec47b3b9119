"""Retry amplification end to end: ``brownout run`` judges a real service that calls its dependency
through a real ``brownout proxy`` and retries naively or politely while a ``rate_limit`` answers 429.

    load generator → proxy route ``api`` → the service (this test) → proxy route ``dep`` → dependency

The service counts every attempt it makes and the dependency every call it answers; the
amplification the run reports must be the proxy's arrivals on ``dep`` over what the load
generator sent, and those arrivals what the dependency and the fault together saw.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ProxyProcess, serve_app
from tests.runner.conftest import brownout_run

RETRIES = 3


@dataclass
class Service:
    """Calls ``dep`` once per request; on 429 retries at once (``naive``) or only after the
    Retry-After it was given, within its budget (``polite``: here the budget is shorter, so it gives up)."""

    policy: str = "naive"
    budget_s: float = 0.3
    dep_url: str = ""
    attempts: int = 0
    dependency_calls: int = 0
    session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def predict(self, request: web.Request) -> web.Response:
        assert self.session is not None
        rid = request.headers.get("X-Request-ID") or uuid.uuid4().hex  # the same id on every retry
        started = time.monotonic()
        for attempt in range(1 + RETRIES):
            self.attempts += 1
            async with self.session.post(self.dep_url + "/work", json={"n": attempt},
                                         headers={"X-Request-ID": rid}) as answer:
                body = await answer.read()
                if answer.status != 429:
                    return web.Response(status=answer.status, body=body)
                if self.policy == "polite":
                    wait = float(answer.headers.get("Retry-After", "1"))
                    if time.monotonic() - started + wait > self.budget_s:
                        break  # cannot wait it out: pass the 429 on
                    await asyncio.sleep(wait)
        return web.Response(status=429, body=body, headers={"Retry-After": answer.headers.get("Retry-After", "1")})

    async def work(self, request: web.Request) -> web.Response:
        await request.read()
        self.dependency_calls += 1
        return web.json_response({"ok": True})


@pytest.fixture
async def stack(proxy_factory: Callable[..., ProxyProcess]) -> AsyncIterator[tuple[Service, ProxyProcess]]:
    service = Service()
    dependency = web.Application()
    dependency.router.add_post("/work", service.work)
    dep_runner, dep_url = await serve_app(dependency)
    app = web.Application()
    app.router.add_get("/predict", service.predict)
    api_runner, api_url = await serve_app(app)
    proxy = proxy_factory({"routes": [{"name": "api", "upstream": api_url}, {"name": "dep", "upstream": dep_url}]})
    service.dep_url = proxy.url("dep").rstrip("/")
    async with aiohttp.ClientSession() as session:
        service.session = session
        yield service, proxy
    await api_runner.cleanup()
    await dep_runner.cleanup()


def experiment(folder: Path, proxy: ProxyProcess) -> Path:
    doc: dict[str, Any] = {
        "version": 1, "title": "retry storm on dep", "seed": 1,
        "target": {"url": proxy.url("api", "/predict")},
        "proxies": [{"admin": proxy.admin}],
        "load": {"shape": "constant", "rate": 30, "duration": "7s", "timeout": "3s"},
        "steady_state": {"window": "1s", "baseline": "2s",
                         "sla": {"error_rate": 0.2, "max_retry_amplification": {"dep": 1.5, "api": 1.5},
                                 "max_retry_after_violations": {"dep": 0}}},
        # 10 requests/s for the 30/s the load sends: two in three get a 429 with Retry-After: 1.
        "method": [{"fault": "rate_limit", "route": "dep", "at": "0s", "duration": "3s",
                    "params": {"requests_per_minute": 600}}],
        "recovery": {"within": "2s"},
        "report": {"dir": str(folder / "reports")},
    }
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def counters(proxy: ProxyProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(proxy.admin + "/metrics") as resp:
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name.endswith("_total")}


def total(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and labels.items() <= dict(ls).items())


def arrivals(row: dict[str, Any], route: str) -> int:
    """A window's (or phase's) arrivals on ``route`` summed over its sidecars, from the journal."""
    return sum(s["routes"].get(route, {}).get("requests", 0) for s in row["sidecars"].values())


def check_values_are_the_counters_over_sends(journal: dict[str, Any]) -> None:
    """Every verdict and phase figure is the proxy's count over the load generator's, exactly."""
    windows = {w["index"]: w for w in journal["windows"]}
    judged = [v for v in journal["verdicts"] if v["sli"] == "retry_amplification[dep]"]
    assert len(judged) == len(windows)
    for v in judged:
        w = windows[v["window"]]
        assert v["value"] == pytest.approx(arrivals(w, "dep") / w["stats"]["sent"]), (v, w["sidecars"])
        assert v["note"] == f"{arrivals(w, 'dep')} arrivals / {w['stats']['sent']} sent"
    for p in journal["phases"]:
        [amp] = [v for v in p["verdicts"] if v["sli"] == "retry_amplification[dep]"]
        assert amp["window"] is None and amp["value"] == pytest.approx(arrivals(p, "dep") / p["stats"]["sent"])


async def test_naive_retries_amplify_the_load_and_fail_the_run(
        tmp_path: Path, stack: tuple[Service, ProxyProcess]) -> None:
    service, proxy = stack
    code, out, err = await brownout_run(str(experiment(tmp_path, proxy)), "--quiet")
    journal = json.loads((tmp_path / "reports" / "journal.json").read_text())
    assert code == 1, out + err
    assert "retry_amplification[dep]" in journal["status"]["reason"], journal["status"]
    check_values_are_the_counters_over_sends(journal)
    phases = {p["phase"]: {v["sli"]: v for v in p["verdicts"]} for p in journal["phases"]}
    # Under the limit two in three requests are refused and each comes back three times at once: about 3x.
    assert phases["method"]["retry_amplification[dep]"]["value"] > 2.0, phases["method"]
    assert phases["baseline"]["retry_amplification[dep]"]["value"] == pytest.approx(1.0, abs=0.1)
    assert phases["method"]["retry_amplification[api]"]["value"] == pytest.approx(1.0, abs=0.1)  # the clients' own
    assert phases["method"]["retry_after_violations[dep]"]["value"] > 20  # every immediate comeback is early
    assert phases["baseline"]["retry_after_violations[dep]"]["value"] == 0
    failed = {c["name"] for c in journal["checks"] if not c["ok"]}
    assert {"method: retry_amplification[dep] <= 1.5", "method: retry_after_violations[dep] <= 0"} <= failed
    assert not any("[api]" in name for name in failed)

    # The proxy's arrivals are what the dependency answered plus what the fault refused, and
    # every attempt the service made (nothing is in flight now).
    found = await counters(proxy)
    on_dep = total(found, "brownout_requests_total", route="dep")
    refused = total(found, "brownout_fault_rejections_total", route="dep", kind="rate_limit")
    assert on_dep == service.attempts == service.dependency_calls + refused
    assert refused == total(found, "brownout_requests_total", route="dep", status="429")
    # The run's windows counted all of it but what came before the first reading (preflight) or after the last.
    counted = sum(arrivals(w, "dep") for w in journal["windows"])
    assert on_dep - 10 <= counted <= on_dep, (counted, on_dep)

    # Where a reader sees it: the summary, JUnit and the HTML report.
    assert "retries per phase" in out and "FAIL method: retry_amplification[dep] <= 1.5" in out
    case = ET.parse(tmp_path / "reports" / "junit.xml").getroot().find(
        ".//testcase[@name='retry_amplification[dep] <= 1.5'][@classname='brownout.method']")
    assert case is not None and case.find("failure") is not None
    assert "retry_amplification[dep] = " in case.find("failure").get("message", "")
    html = (tmp_path / "reports" / "report.html").read_text()
    assert 'id="chart-retries"' in html and "<h2>Retries per phase</h2>" in html


async def test_retries_that_honour_retry_after_hold(tmp_path: Path, stack: tuple[Service, ProxyProcess]) -> None:
    service, proxy = stack
    service.policy = "polite"
    code, out, err = await brownout_run(str(experiment(tmp_path, proxy)), "--quiet")
    journal = json.loads((tmp_path / "reports" / "journal.json").read_text())
    assert code == 0, out + err
    check_values_are_the_counters_over_sends(journal)
    method = {v["sli"]: v for p in journal["phases"] if p["phase"] == "method" for v in p["verdicts"]}
    assert method["retry_amplification[dep]"]["value"] == pytest.approx(1.0, abs=0.1)
    assert method["retry_after_violations[dep]"]["value"] == 0
    found = await counters(proxy)
    assert total(found, "brownout_fault_rejections_total", route="dep") > 20  # the limit did refuse
    assert total(found, "brownout_requests_total", route="dep") == service.attempts


async def test_a_route_no_proxy_serves_stops_the_run_at_preflight(
        tmp_path: Path, stack: tuple[Service, ProxyProcess]) -> None:
    _, proxy = stack
    path = experiment(tmp_path, proxy)
    code, out, err = await brownout_run(str(path), "--quiet", "--set", "steady_state.sla.max_retry_amplification={dpe: 1.5}")
    assert code == 4, out + err
    assert "steady_state.sla.max_retry_amplification: route 'dpe' is not an http route of any proxy " \
           "(they serve: api, dep)" in out + err
