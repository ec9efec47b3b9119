"""The model API's retry policy and failover: exact attempts and waits with a fake clock and a seeded rng.

The plan is checked on its own (pure), then ``Upstream.call`` against real HTTP servers on
127.0.0.1 that answer from a script, the clock and sleep faked so waits are exact.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from brownout.demo.game_day import RETRY_ENV, retry_from_env
from brownout.demo.retry import (
    BROKEN, ERROR, OK, OVERLOADED, REJECTED, TIMEOUT, UNREACHABLE, Attempt, RetryPlan, RetryPolicy,
)
from brownout.demo.upstream import REQUEST_ID, Upstream, classify, parse_retry_after
from brownout.demo.web import free_port, serve
from faults.errors import InvalidInput

SEED = 1234


def _draws(policy: RetryPolicy, n: int) -> list[float]:
    """The waits a seeded rng gives the first n retries, computed independently of the code under test."""
    rng = random.Random(SEED)
    return [rng.uniform(0, min(policy.cap_ms, policy.base_ms * 2 ** k) / 1000) for k in range(n)]


# ---- the policy -------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "mode", "retries"), [
    ("none", "none", 0), ("immediate", "immediate", 3), ("immediate:5", "immediate", 5),
    ("backoff", "backoff", 1), ("backoff:4", "backoff", 4), (" backoff:0 ", "backoff", 0),
])
def test_specs_parse(spec: str, mode: str, retries: int) -> None:
    policy = RetryPolicy.parse(spec, budget_ms=900.0)
    assert (policy.mode, policy.retries, policy.budget_ms) == (mode, retries, 900.0)
    assert RetryPolicy.parse(policy.spec) == RetryPolicy(mode=mode, retries=retries)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["", "sometimes", "immediate:x", "backoff:-1", "backoff:11"])
def test_bad_specs_name_the_flag(spec: str) -> None:
    with pytest.raises(InvalidInput) as err:
        RetryPolicy.parse(spec)
    assert err.value.field in ("--retry", "retry.retries")


def test_brownout_demo_takes_the_policy_from_its_environment() -> None:
    assert retry_from_env({}) == RetryPolicy() == retry_from_env({RETRY_ENV: " "})
    assert retry_from_env({RETRY_ENV: "immediate:2"}) == RetryPolicy(mode="immediate", retries=2)
    with pytest.raises(InvalidInput) as err:
        retry_from_env({RETRY_ENV: "often"})
    assert err.value.field == RETRY_ENV and "often" in err.value.message


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"retries": -1}, "retry.retries"), ({"base_ms": float("nan")}, "retry.base_ms"),
    ({"cap_ms": -5.0}, "retry.cap_ms"), ({"budget_ms": float("inf")}, "retry.budget_ms"),
    ({"mode": "always"}, "retry.mode"),
])
def test_bad_policies_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        RetryPolicy(**kwargs)
    assert err.value.field == field


def test_full_jitter_waits_double_up_to_the_cap() -> None:
    policy = RetryPolicy(mode="backoff", retries=6, base_ms=10, cap_ms=50)
    rng = random.Random(SEED)
    assert [policy.backoff_s(k, rng) for k in range(1, 7)] == _draws(policy, 6)
    # The bounds themselves: 10, 20, 40, then capped at 50 ms.
    rng = random.Random(0)
    many = [[policy.backoff_s(k, rng) for _ in range(2000)] for k in (1, 2, 3, 4, 6)]
    for waits, bound in zip(many, (0.010, 0.020, 0.040, 0.050, 0.050)):
        assert 0 <= min(waits) and max(waits) <= bound and max(waits) > 0.9 * bound
    assert RetryPolicy(mode="immediate").backoff_s(1, rng) == 0.0


# ---- the plan (pure) --------------------------------------------------------------------------

def _plan(policy: RetryPolicy, replicas: int = 2, first: int = 0, timeout_s: float = 2.0) -> RetryPlan:
    return RetryPlan(policy, replicas, first, started=100.0, deadline_s=policy.deadline_s(timeout_s),
                     timeout_s=timeout_s, rng=random.Random(SEED))


def _run(plan: RetryPlan, outcomes: list[Attempt | str], attempt_s: float = 0.001) -> list[tuple[int, float, float]]:
    """Drive the plan with scripted outcomes; returns (replica, wait, timeout) of every attempt made."""
    now, made = plan.started, []
    script = iter(outcomes)
    while (step := plan.next(now)) is not None:
        now += step.wait_s
        made.append((step.replica, step.wait_s, step.timeout_s))
        got = next(script)
        now += attempt_s
        plan.record(got if isinstance(got, Attempt) else Attempt(step.replica, got), now)
    return made


def test_none_makes_one_attempt() -> None:
    made = _run(_plan(RetryPolicy(mode="none")), [UNREACHABLE])
    assert made == [(0, 0.0, 2.0)]


def test_immediate_retries_at_once_round_the_replicas_and_ignore_retry_after() -> None:
    overloaded = Attempt(1, OVERLOADED, status=503, retry_after_s=5.0)
    made = _run(_plan(RetryPolicy(mode="immediate", retries=3)), [ERROR, overloaded, UNREACHABLE, TIMEOUT])
    assert [(r, w) for r, w, _ in made] == [(0, 0.0), (1, 0.0), (0, 0.0), (1, 0.0)]


def test_backoff_waits_are_the_seeded_full_jitter_draws() -> None:
    policy = RetryPolicy(mode="backoff", retries=3, base_ms=20, cap_ms=50, budget_ms=1000)
    made = _run(_plan(policy, replicas=3, first=2), [ERROR, UNREACHABLE, ERROR, OK])
    assert [r for r, _, _ in made] == [2, 0, 1, 2]  # each retry fails over to the next replica
    assert [w for _, w, _ in made] == [0.0, *_draws(policy, 3)]


def test_backoff_never_retries_before_retry_after() -> None:
    policy = RetryPolicy(mode="backoff", retries=2, budget_ms=5000)
    plan = _plan(policy, timeout_s=10.0)
    made = _run(plan, [Attempt(0, OVERLOADED, status=429, retry_after_s=1.5), ERROR, OK], attempt_s=0.0)
    assert made[1][1] == 1.5  # Retry-After beats the jitter (at most 25 ms)...
    assert made[2][1] == _draws(policy, 2)[1]  # ...and the next wait is the jitter again
    assert made[1][0] == 1  # a failover, still not before the advertised time
    assert made[1][2] == pytest.approx(5.0 - 1.5)  # the retry's own limit: what is left of the budget


def test_a_retry_after_beyond_the_budget_ends_the_call_at_once() -> None:
    made = _run(_plan(RetryPolicy(mode="backoff", retries=3, budget_ms=500)),
                [Attempt(0, OVERLOADED, status=503, retry_after_s=1.0)])
    assert len(made) == 1


def test_the_budget_bounds_retries_but_not_the_first_attempt() -> None:
    policy = RetryPolicy(mode="immediate", retries=10, budget_ms=300)
    plan = _plan(policy, timeout_s=2.0)
    made = _run(plan, [TIMEOUT] * 11, attempt_s=0.125)
    assert made[0] == (0, 0.0, 2.0)
    assert len(made) == 3  # at 0, 0.125 and 0.25 s; at 0.375 s the budget is spent
    assert [round(t, 6) for _, _, t in made[1:]] == [0.175, 0.05]  # each retry ends by the budget
    # An upstream timeout shorter than the budget is the deadline (the feature store's 100 ms).
    assert _plan(RetryPolicy(), timeout_s=0.1).deadline_s == 0.1


@pytest.mark.parametrize("outcome", [OK, REJECTED, BROKEN])
def test_answers_and_our_own_mistakes_are_not_retried(outcome: str) -> None:
    assert len(_run(_plan(RetryPolicy(mode="immediate", retries=3)), [outcome])) == 1


# ---- classification -----------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "headers", "outcome"), [
    (200, {}, OK), (204, {}, OK), (429, {}, OVERLOADED), (503, {"Retry-After": "1"}, OVERLOADED),
    (529, {"Retry-After": "2"}, OVERLOADED), (503, {}, ERROR), (500, {}, ERROR), (502, {}, ERROR),
    (400, {}, REJECTED), (404, {}, REJECTED), (302, {}, REJECTED),
])
def test_statuses_are_classified(status: int, headers: dict[str, str], outcome: str) -> None:
    assert classify(status, headers) == outcome


def test_retry_after_takes_seconds_and_http_dates() -> None:
    wall = 1_800_000_000.0
    date = format_datetime(datetime.fromtimestamp(wall, UTC) + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after("3", wall) == 3.0 and parse_retry_after(" 0.5 ", wall) == 0.5
    assert parse_retry_after(date, wall) == 7.0
    assert parse_retry_after("-4", wall) == 0.0
    assert parse_retry_after("soon", wall) is None and parse_retry_after(None, wall) is None
    assert parse_retry_after("nan", wall) is None


# ---- Upstream.call against real servers ----------------------------------------------------------

@dataclass
class FakeClock:
    now: float = 50.0
    waits: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@dataclass
class Scripted:
    """A replica that answers each request with the next (status, headers) of its script (then 200)."""

    script: list[tuple[int, dict[str, str]]]
    seen: list[tuple[str, Any]] = field(default_factory=list)  # (X-Request-Id, body) per request

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.seen.append((request.headers.get(REQUEST_ID, ""), await request.json()))
            status, headers = self.script.pop(0) if self.script else (200, {})
            return web.json_response({"n": len(self.seen)}, status=status, headers=headers)

        app = web.Application()
        app.router.add_post("/v1/score", handle)
        return app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _replicas(stack: AsyncExitStack, *scripts: Scripted) -> list[str]:
    return [(await stack.enter_async_context(serve(s.app()))).url for s in scripts]


def _upstream(session: aiohttp.ClientSession, urls: list[str], policy: RetryPolicy, clock: FakeClock,
              seen: list[tuple[int, bool, str]] | None = None, timeout_s: float = 2.0) -> Upstream:
    hook = None if seen is None else (lambda name, replica, retry, outcome: seen.append((replica, retry, outcome)))
    return Upstream("gpu-worker", session, urls, "/v1/score", timeout_s, policy, clock=clock, sleep=clock.sleep,
                    rng=random.Random(SEED), wall=lambda: 1_800_000_000.0, on_attempt=hook)


async def test_failover_keeps_the_request_id_and_body_and_waits_the_jitter(session: aiohttp.ClientSession) -> None:
    a, b = Scripted([(502, {})]), Scripted([])
    clock, hooks = FakeClock(), []
    async with AsyncExitStack() as stack:
        urls = await _replicas(stack, a, b)
        policy = RetryPolicy(mode="backoff", retries=2)
        attempts = await _upstream(session, urls, policy, clock, hooks).call({"instances": [[1.0]]}, "req-42")
    assert [(x.replica, x.outcome, x.status) for x in attempts] == [(0, ERROR, 502), (1, OK, 200)]
    assert json.loads(attempts[-1].body) == {"n": 1}
    assert clock.waits == _draws(policy, 1)
    assert a.seen == b.seen == [("req-42", {"instances": [[1.0]]})]
    assert hooks == [(0, False, ERROR), (1, True, OK)]


async def test_first_attempts_go_round_robin(session: aiohttp.ClientSession) -> None:
    a, b = Scripted([]), Scripted([])
    async with AsyncExitStack() as stack:
        upstream = _upstream(session, await _replicas(stack, a, b), RetryPolicy(), FakeClock())
        for i in range(6):
            await upstream.call({"i": i}, f"r{i}")
    assert [body["i"] for _, body in a.seen] == [0, 2, 4] and [body["i"] for _, body in b.seen] == [1, 3, 5]


async def test_immediate_retries_storm_an_overloaded_replica_set(session: aiohttp.ClientSession) -> None:
    shed = (503, {"Retry-After": "1"})
    a, b = Scripted([shed, shed]), Scripted([shed, shed])
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        urls = await _replicas(stack, a, b)
        attempts = await _upstream(session, urls, RetryPolicy(mode="immediate", retries=3), clock).call({}, "storm")
    assert [x.outcome for x in attempts] == [OVERLOADED] * 4 and clock.waits == []
    assert [rid for rid, _ in a.seen + b.seen] == ["storm"] * 4


async def test_backoff_honours_retry_after_within_the_budget(session: aiohttp.ClientSession) -> None:
    a, b = Scripted([(429, {"Retry-After": "2"})]), Scripted([(503, {"Retry-After": "9"})])
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        urls = await _replicas(stack, a, b)
        policy = RetryPolicy(mode="backoff", retries=3, budget_ms=5000)
        attempts = await _upstream(session, urls, policy, clock, timeout_s=10.0).call({}, "ra")
    # 429 with 2 s → the retry waits 2 s; 503 with 9 s is past the 5 s budget → give up, pass it on.
    assert [(x.replica, x.outcome) for x in attempts] == [(0, OVERLOADED), (1, OVERLOADED)]
    assert clock.waits == [2.0] and attempts[-1].retry_after == "9"


async def test_refused_connections_fail_over_and_client_errors_do_not_retry(session: aiohttp.ClientSession) -> None:
    a = Scripted([(400, {})])
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        live = await _replicas(stack, a)
        dead = f"http://127.0.0.1:{free_port()}"
        upstream = _upstream(session, [dead, live[0]], RetryPolicy(mode="immediate", retries=3), clock)
        first = await upstream.call({}, "x")    # dead → live (which answers 400: not retried)
        second = await upstream.call({}, "y")   # live (200) first
    assert [(x.replica, x.outcome, x.error) for x in first] == [(0, UNREACHABLE, "ClientConnectorError"),
                                                                (1, REJECTED, "")]
    assert [(x.replica, x.outcome) for x in second] == [(1, OK)]
    assert [rid for rid, _ in a.seen] == ["x", "y"]


async def test_a_timeout_spends_the_upstream_timeout_and_ends_the_call(session: aiohttp.ClientSession) -> None:
    """The upstream's timeout bounds the whole call: a hung replica is not retried past it."""
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/score", slow)
    fast = Scripted([])
    async with serve(app) as stalled, serve(fast.app()) as ok:
        policy = RetryPolicy(mode="immediate", retries=1, budget_ms=60_000)
        upstream = Upstream("gpu-worker", session, [stalled.url, ok.url], "/v1/score", 0.2, policy)  # real clock
        started = asyncio.get_running_loop().time()
        attempts = await upstream.call({}, "slow")
        elapsed = asyncio.get_running_loop().time() - started
    assert [(x.replica, x.outcome) for x in attempts] == [(0, TIMEOUT)]
    assert 0.15 < elapsed < 2.0 and fast.seen == []


def test_an_upstream_needs_a_replica() -> None:
    with pytest.raises(ValueError):
        Upstream("gpu-worker", None, [], "/v1/score", 1.0, RetryPolicy())  # type: ignore[arg-type]

