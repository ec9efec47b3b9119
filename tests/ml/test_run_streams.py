"""``brownout run`` end to end against the demo LLM behind a real proxy, with SSE stream faults.

Every status stays 200; the run still exits 1, because the stream prober measures TTFT
(within ±20% of the injected first-event delay) and sees the cut streams' missing [DONE].
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from brownout.demo.llm import LLM_PATH, create_app
from brownout.demo.web import Served, serve
from tests.runner.conftest import brownout_run

DELAY_MS = 400


@pytest.fixture
async def llm() -> AsyncIterator[Served]:
    async with serve(create_app()) as served:
        yield served


def experiment(folder: Path, proxy: Any) -> Path:
    doc = {
        "version": 1,
        "title": "LLM stream faults",
        "seed": 3,
        "target": {"url": proxy.url("llm", "/v1/models")},
        "proxies": [{"admin": proxy.admin}],
        "load": {"shape": "constant", "rate": 5, "duration": "6s", "timeout": "2s"},
        "steady_state": {
            "window": "1s",
            "sla": {"error_rate": 0.0},
            "streams": {
                "url": proxy.url("llm", LLM_PATH),
                "body": {"model": "brownout-demo", "messages": [{"role": "user", "content": "hello"}],
                         "max_tokens": 8},
                "interval": "100ms",
                "sla": {"ttft_p99_ms": 200, "itl_p99_ms": 300, "min_goodput": 0.9},
            },
        },
        "method": [
            {"fault": "stream", "route": "llm", "at": "1s", "duration": "3s",
             "params": {"first_event_delay_ms": DELAY_MS}, "match": {"path": LLM_PATH}},
            {"fault": "stream", "route": "llm", "at": "4500ms", "duration": "1s",
             "params": {"cut_after_events": 3}, "match": {"path": LLM_PATH}},
        ],
        "recovery": {"within": "2s"},
        "report": {"dir": str(folder / "reports")},
    }
    path = folder / "llm.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def test_stream_faults_exit_1_with_stream_slis_while_every_status_is_200(
        tmp_path: Path, proxy_factory: Any, llm: Served) -> None:
    proxy = proxy_factory({"routes": [{"name": "llm", "upstream": llm.url}],
                           "fault_ttl": {"default": "1m", "max": "10m"}})
    code, out, err = await brownout_run(str(experiment(tmp_path, proxy)))
    assert code == 1, out + err
    journal = json.loads((tmp_path / "reports" / "journal.json").read_text())
    windows = journal["windows"]
    assert all(set(w["stats"]["statuses"]) == {"2xx"} for w in windows if w["stats"]["sent"])
    problems = {p for w in windows for p in (w["streams"] or {}).get("problems", {})}
    assert not any(p.startswith(("status", "transport")) for p in problems), problems  # streams too got 200s

    failed = [v for v in journal["verdicts"] if not v["ok"]]
    assert "method" in {v["phase"] for v in failed} and journal["status"]["outcome"] == "deviated", failed
    ttft = [v for v in failed if v["sli"] == "ttft_p99_ms"]
    assert ttft and all(v["active_faults"] == ["stream@llm"] for v in ttft)
    cut = [v for v in failed if v["sli"] == "stream_integrity_failures"]
    assert cut and "no [DONE]" in problems

    # TTFT measured in windows wholly inside the delay fault: the injected delay, ±20%.
    delay = next(i for i in journal["injections"] if i["params"].get("first_event_delay_ms"))
    inside = [w for w in windows if delay["started_at"] <= w["start"] and w["end"] <= delay["ended_at"]]
    assert inside, (delay, [(w["start"], w["end"]) for w in windows])
    for w in inside:
        assert w["streams"]["streams"] >= 1
        assert DELAY_MS * 0.8 <= w["streams"]["ttft_p50_ms"] <= DELAY_MS * 1.2, w["streams"]
