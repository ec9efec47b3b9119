"""The locust engine's parts that need no Locust: shares of the schedule, the wire format, merges.

``test_distributed.py`` runs the whole engine with real processes; these pin the arithmetic
it rests on: N shares are the local engine's schedule exactly (also across a rebalance), a
plan sent as JSON encodes the same request bytes, windows merged from workers equal
windows fed record by record, edge-case reports add up.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from brownout.experiment.loader import load_experiment
from brownout.experiment.steady import Predictions, Sla, SteadyState
from brownout.load.client import parse_target
from brownout.load.distributed.coordinator import DistributedRun, LoadJob
from brownout.load.distributed.deltas import DeltaWindows
from brownout.load.distributed.protocol import (
    RUN,
    SHARE,
    STOP,
    ChecksWire,
    TemplateWire,
    WorkerPlan,
    corpus_slice,
    edge_case_wire,
    edge_report_dict,
    merge_edge_reports,
)
from brownout.load.distributed.share import Epoch, GlobalSchedule, ShareArrivals
from brownout.load.distributed.worker_load import invariants_of
from brownout.load.edgecases import EdgeCaseTally, parse_edge_cases
from brownout.load.payloads import PayloadSource, request_template
from brownout.load.schedule import arrival_times
from brownout.load.shapes import ConstantShape, RampShape, parse_load_shape
from brownout.records import RequestRecord
from brownout.runner.context import RunContext, RunOptions, load_job
from brownout.runner.plan import build_plan
from brownout.runner.shape import HeldTail
from brownout.steady.checker import SteadyStateChecker
from brownout.windows import WindowGrid
from faults.errors import InvalidInput, InvalidInputs, Unreachable

SHAPES = [
    ConstantShape(400, 5), RampShape(0, 100, 7.3), RampShape(50, 3, 4), ConstantShape(33.3, 2.9),
    HeldTail(RampShape(10, 200, 3), 2.5),
    parse_load_shape({"shape": "spike", "rate": 10, "peak": 300, "at": "1s", "hold": "0.5s", "duration": "3s"}, ""),
    parse_load_shape({"shape": "steps", "from": 10, "to": 100, "step": 30, "step_duration": "0.7s"}, ""),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_the_shares_of_n_workers_are_the_local_schedule_exactly(shape: Any) -> None:
    local = list(arrival_times(shape))
    schedule = GlobalSchedule(shape.segments())
    assert schedule.total == len(local) and [schedule.time_of(k) for k in range(schedule.total)] == local
    for n in (1, 2, 3, 5):
        shares = [list(ShareArrivals(schedule, Epoch(0, slot, n))) for slot in range(n)]
        assert sorted(t for share in shares for t in share) == local
        assert max(map(len, shares)) - min(map(len, shares)) <= 1  # 1/N each, to one request


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_a_rebalance_hands_a_lost_share_to_the_others_without_gap_or_double(shape: Any) -> None:
    local = list(arrival_times(shape))
    schedule = GlobalSchedule(shape.segments())
    at = shape.duration * 0.4
    from_k = schedule.count_before(at)
    assert all(t < at for t in local[:from_k]) and all(t >= at for t in local[from_k:])
    sent = []
    for slot, new_slot in ((0, 0), (2, 1)):  # slot 1 of 3 leaves at ``at``; 0 and 2 become 0 and 1 of 2
        share = ShareArrivals(schedule, Epoch(0, slot, 3))
        share.reassign(Epoch(from_k, new_slot, 2, at))
        sent += list(share)
    sent += [t for t in ShareArrivals(schedule, Epoch(0, 1, 3)) if t < at]
    assert sorted(sent) == local
    # A joiner the other way: 2 workers, a third from ``at``.
    sent = [t for t in ShareArrivals(schedule, Epoch(from_k, 2, 3, at))]
    for slot in (0, 1):
        share = ShareArrivals(schedule, Epoch(0, slot, 2))
        share.reassign(Epoch(from_k, slot, 3, at))
        sent += list(share)
    assert sorted(sent) == local


def test_an_epoch_that_comes_late_never_sends_an_arrival_twice() -> None:
    schedule = GlobalSchedule(ConstantShape(100, 1).segments())
    share = ShareArrivals(schedule, Epoch(0, 0, 1))
    first = [next(share) for _ in range(50)]  # arrivals 0..49 sent alone
    share.reassign(Epoch(10, 1, 2))  # decided for index 10 on, arrives after 49: applies from 50
    rest = list(share)
    assert rest[0] > first[-1] and len(first) + len(rest) == 50 + 25


def _plan(payloads: PayloadSource, **extra: Any) -> dict[str, Any]:
    shape = ConstantShape(10, 1)
    plan = WorkerPlan(run="r1", url="http://127.0.0.1:9/predict", shape=shape.name, duration=shape.duration,
                      segments=[(s.start, s.end, s.rate_start, s.rate_end) for s in shape.segments()],
                      start_wall=0.0, epoch={"from_k": 0, "slot": 0, "of": 1},
                      templates=corpus_slice(payloads.templates, 0, 1), edge_cases=edge_case_wire(payloads.edge_cases),
                      oversized_bytes=payloads.edge_cases.oversized_bytes, seed=payloads.seed, **extra)
    return json.loads(json.dumps(plan.model_dump(), default=lambda b: b.decode("latin-1")))  # as a message carries it


def test_a_plan_carries_the_corpus_and_edge_cases_byte_for_byte() -> None:
    templates = (
        request_template({"body": {"id": "{{uuid}}", "n": "{{seq}}", "amount": 12.5}, "path": "/p/{{seq}}"}, "c"),
        request_template({"body": None, "method": "GET", "headers": {"X-Tenant": "a"}}, "c"),
        request_template({"body_base64": "AAEC/w==", "content_type": "application/octet-stream"}, "c"),
    )
    source = PayloadSource(templates, parse_edge_cases({"malformed_json": 0.2, "oversized": {"ratio": 0.1, "bytes": 64}}),
                           seed=7)
    data = _plan(source)
    data["templates"][2]["raw_body"] = bytes([0, 1, 2, 255])  # msgpack keeps bytes; JSON above could not
    received = WorkerPlan.parse(data).payload_source()
    target = parse_target("http://127.0.0.1:9/predict")
    here, there = source.encoder(target), received.encoder(target)
    assert [here(i) for i in range(300)] == [there(i) for i in range(300)]


def test_a_bad_plan_is_refused_naming_the_field() -> None:
    good = _plan(PayloadSource())
    with pytest.raises(InvalidInput, match="plan.url"):
        WorkerPlan.parse({**good, "url": "ftp://x"})
    with pytest.raises(InvalidInputs, match="plan.connections"):
        WorkerPlan.parse({**good, "connections": 0})
    bad_template = TemplateWire(method="POST", body=["{", "rm -rf", "}"])
    with pytest.raises(InvalidInput, match=r"plan.templates\[0\].body"):
        WorkerPlan.parse({**good, "templates": [bad_template.model_dump()]}).payload_source()


def test_a_big_corpus_is_sliced_a_small_one_goes_whole() -> None:
    small = [request_template({"body": {"i": i}}, "c") for i in range(10)]
    assert len(corpus_slice(small, 1, 3)) == 10
    big = [request_template({"body": {"i": i}}, "c") for i in range(6000)]
    slices = [corpus_slice(big, m, 3) for m in range(3)]
    assert sorted(len(s) for s in slices) == [2000] * 3


def _records(rng: random.Random, n: int, horizon: float) -> list[RequestRecord]:
    out = []
    for _ in range(n):
        status = rng.choice([200, 200, 200, 503, 404, 0])
        body = json.dumps({"score": rng.random()}).encode() if status == 200 and rng.random() < 0.9 else b"nope"
        out.append(RequestRecord(rng.uniform(0, horizon), rng.uniform(0.001, 0.4), status,
                                 "timeout" if status == 0 else None, 40, None, rng.random() < 0.05, body))
    return out


def test_windows_merged_from_workers_equal_windows_fed_record_by_record() -> None:
    rng = random.Random(11)
    steady = SteadyState(window=1.0, sla=Sla(latency_p99_ms=300, error_rate=0.2),
                         predictions=Predictions(score="$.score", schema=("$.score",), max_invalid_rate=0.5))
    fed, merged = SteadyStateChecker(steady), SteadyStateChecker(steady)
    offset = 2.5  # a load that started at run second 2.5: its windows line up with the checker's grid
    workers = [DeltaWindows(WindowGrid(1.0, -offset), invariants_of(ChecksWire(required=["$.score"], score="$.score")))
               for _ in range(3)]
    for worker in workers:
        for r in _records(rng, 400, 4.0):
            fed.feed(RequestRecord(r.scheduled_at + offset, r.latency_s, r.status, r.error, r.bytes_received,
                                   r.edge_case, r.dropped, r.body))
            worker.add(r)
            if rng.random() < 0.1:  # reports go out as the windows fill
                for acc, checks in zip(*_taken(worker)):
                    merged.merge_window(acc, **checks)
    for worker in workers:
        for acc, checks in zip(*_taken(worker)):
            merged.merge_window(acc, **checks)
    for index in range(2, 7):
        a = fed.close_window(index, phase="method")
        b = merged.close_window(index, phase="method")
        assert a.stats == b.stats and a.quality == b.quality and a.verdicts == b.verdicts
    assert sum(w.overall.sent + w.overall.dropped for w in workers) == 1200
    late = DeltaWindows(WindowGrid(1.0, -offset))
    late.add(RequestRecord(0.1, 0.01, 200))  # window 2, closed above
    [acc], _ = late.take()
    assert merged.merge_window(acc) is False and merged.late == 1


def _taken(worker: DeltaWindows) -> tuple[list[Any], list[dict[str, Any]]]:
    windows, checks = worker.take()
    by_index = {c.index: c for c in checks}
    kwargs = [{"responses": by_index[a.index].responses, "problems": by_index[a.index].problems,
               "violations": by_index[a.index].violations, "scores": by_index[a.index].scores}
              if a.index in by_index else {} for a in windows]
    return windows, kwargs


def test_edge_case_reports_of_workers_add_up_to_one_tally() -> None:
    mix = parse_edge_cases({"malformed_json": 0.1, "empty_body": 0.1})
    rng = random.Random(5)
    whole, parts = EdgeCaseTally(mix), [EdgeCaseTally(mix) for _ in range(3)]
    for i in range(600):
        status = rng.choice([400, 400, 422, 500, 0])
        r = RequestRecord(0.0, 0.01, status, "timeout" if status == 0 else None, 0,
                          rng.choice(["malformed_json", "empty_body"]), i % 50 == 0)
        whole.add(r)
        parts[i % 3].add(r)
    merged = merge_edge_reports([edge_report_dict(p.report()) for p in parts])
    expected = whole.report()
    assert merged.cases == expected.cases
    assert [(f.edge_case, f.got, f.count, f.severe) for f in merged.findings] == \
        [(f.edge_case, f.got, f.count, f.severe) for f in expected.findings]


async def test_the_master_rebalances_on_loss_and_stops_below_min_workers() -> None:
    sent: list[tuple[str, str, Any]] = []
    events: list[tuple[str, dict[str, Any]]] = []
    job = LoadJob("http://127.0.0.1:9/x", ConstantShape(100, 60))
    run = DistributedRun("r", job, start_at=time.monotonic(), min_workers=2,
                         send=lambda w, t, d: sent.append((w, t, d)), on_event=lambda n, **d: events.append((n, d)))
    run.begin(["a", "b", "c"])
    assert [(w, t, d["epoch"]) for w, t, d in sent] == [(w, RUN, {"from_k": 0, "slot": i, "of": 3, "at": 0.0})
                                                         for i, w in enumerate("abc")]
    sent.clear()
    run.lose("b", "its process exited (killed by signal 9)")
    assert (("b", STOP)) in [(w, t) for w, t, _ in sent]
    shares = {w: d["epoch"] for w, t, d in sent if t == SHARE}
    assert set(shares) == {"a", "c"} and {e["slot"] for e in shares.values()} == {0, 1}
    assert all(e["of"] == 2 and e["from_k"] > 0 for e in shares.values())
    assert [n for n, _ in events] == ["worker_lost", "load_rebalanced"] and not run.done.done()
    run.lose("c", "silent for 3.0s")
    assert isinstance(run.failure, Unreachable) and "min_workers 2" in str(run.failure) and run.done.done()
    assert ("a", STOP) in [(w, t) for w, t, _ in sent]


def test_engine_keys_are_checked_where_they_are_written(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("version: 1\ntitle: t\ntarget: {url: 'http://127.0.0.1:9/x'}\n"
                    "load:\n  rate: 10\n  duration: 2s\n  workers: 2\n  min_workers: 3\n")
    with pytest.raises(InvalidInputs) as caught:
        load_experiment(path)
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:7:3: load.workers: only with engine: locust", f"{path}:8:3: load.min_workers: only with engine: locust"]
    path.write_text("version: 1\ntitle: t\ntarget: {url: 'http://127.0.0.1:9/x'}\n"
                    "load: {rate: 10, duration: 2s, engine: locust, expect_workers: 2, min_workers: 3}\n")
    with pytest.raises(InvalidInputs, match=r"load.min_workers: must be <= workers \+ expect_workers \(2\)"):
        load_experiment(path)
    path.write_text("version: 1\ntitle: t\ntarget: {url: 'http://127.0.0.1:9/x'}\n"
                    "load: {rate: 10, duration: 2s, engine: locust}\n")
    load = load_experiment(path).load
    assert (load.engine, load.local_workers, load.expect_workers) == ("locust", 1, 0)


def test_a_run_hands_the_locust_engine_its_experiment_as_jobs(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"body": {"x": 1}}\n')
    path = tmp_path / "exp.yaml"
    path.write_text("version: 1\ntitle: t\nseed: 3\ntarget: {url: 'http://127.0.0.1:9/x'}\n"
                    "load: {rate: 10, duration: 2s, payloads: corpus.jsonl, timeout: 1s, connections: 7,\n"
                    "       edge_cases: {empty_body: 0.1}, engine: locust, workers: 2}\n"
                    "steady_state: {window: 1s, predictions: {score: $.score, schema: [$.score]}}\n")
    exp = load_experiment(path)
    run = RunContext(exp, build_plan(exp, lease=30.0, baseline_s=2.0), RunOptions(), SteadyStateChecker(exp.steady_state),
                     None)
    job = load_job(run, exp.load.to_shape())
    assert (job.connections, job.request_timeout, job.edge_cases_in_windows) == (7, 1.0, True)
    assert job.checks == ChecksWire(required=["$.score"], score="$.score")
    assert job.payloads is not None and job.payloads.seed == 3 and len(job.payloads.templates) == 1
    step = load_job(run, ConstantShape(5, 1), edge_cases_in_windows=False, checks=None, grid=WindowGrid(1.0))
    assert (step.edge_cases_in_windows, step.checks, step.shape) == (False, None, ConstantShape(5, 1))
