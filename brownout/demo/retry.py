"""The model API's retry policy for its upstreams, and the per-request plan that applies it.

Three modes, for showing what retries do to a dependency in trouble:

- ``none``: one attempt; its failure is the answer.
- ``immediate``: up to ``retries`` more attempts at once, Retry-After ignored — the naive
  client whose retries multiply the load on a dependency that is already shedding it.
- ``backoff``: up to ``retries`` more attempts, the k-th after a wait drawn uniformly from
  [0, min(cap, base·2^(k-1))] ("full jitter"), and never before a ``Retry-After`` that an
  earlier attempt of the same request was given (on any replica: the client's next request
  must not arrive before the advertised time, wherever it goes).

Every mode keeps to a per-call retry budget: retries (waits included) must end within
``budget_ms`` of the call's start, and within the upstream's own timeout; a retry that
cannot is not started, so a client request is never held for a Retry-After it cannot wait
out. The first attempt has the upstream's timeout, as without retries. Each retry goes to the
next replica in rotation after the one that just failed: with replicas, a retry is a failover.

The plan is pure (clock and rng are passed in), so tests check exact attempt counts and waits.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal, get_args

from faults.errors import InvalidInput

Mode = Literal["none", "immediate", "backoff"]
MODES: tuple[str, ...] = get_args(Mode)

# What one attempt came to; the retryable ones are those where no usable answer came back.
OK, OVERLOADED, ERROR, UNREACHABLE, TIMEOUT, REJECTED, BROKEN = (
    "ok", "overloaded", "error", "unreachable", "timeout", "rejected", "broken")
OUTCOMES = (OK, OVERLOADED, ERROR, UNREACHABLE, TIMEOUT, REJECTED, BROKEN)
RETRYABLE = frozenset({OVERLOADED, ERROR, UNREACHABLE, TIMEOUT})
DEFAULT_RETRIES = 1


@dataclass(frozen=True)
class RetryPolicy:
    mode: Mode = "backoff"
    retries: int = DEFAULT_RETRIES  # attempts after the first (ignored by ``none``)
    base_ms: float = 25.0         # backoff: the first retry waits up to this long...
    cap_ms: float = 250.0         # ...each later one up to twice the previous, at most this
    budget_ms: float = 500.0      # retries end within this long of the call's start

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"must be one of {', '.join(MODES)}, got {self.mode!r}", "retry.mode")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= 10:
            raise InvalidInput(f"must be an integer from 0 to 10, got {self.retries!r}", "retry.retries")
        for name in ("base_ms", "cap_ms", "budget_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidInput(f"must be a finite number >= 0, got {value!r}", f"retry.{name}")

    @property
    def max_attempts(self) -> int:
        return 1 if self.mode == "none" else 1 + self.retries

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """The jittered wait before the ``retry``-th retry (1-based); 0 unless ``backoff``."""
        if self.mode != "backoff":
            return 0.0
        ceiling = min(self.cap_ms, self.base_ms * 2 ** (retry - 1)) / 1000
        return rng.uniform(0.0, ceiling)

    def deadline_s(self, upstream_timeout_s: float) -> float:
        """How long after a call's start its retries must have ended."""
        return min(self.budget_ms / 1000, upstream_timeout_s)

    @classmethod
    def parse(cls, spec: str, **extra: float | None) -> RetryPolicy:
        """``none``, ``immediate[:N]`` or ``backoff[:N]`` (N retries), as the CLI takes it."""
        mode, _, count = spec.strip().partition(":")
        if mode not in MODES:
            raise InvalidInput(f"must be none, immediate[:N] or backoff[:N], got {spec!r}", "--retry")
        retries = DEFAULT_RETRIES if mode != "immediate" else 3  # "immediate ×3" unless told
        if count:
            if not count.isdigit():
                raise InvalidInput(f"the retry count must be a whole number, got {count!r}", "--retry")
            retries = int(count)
        given = {k: v for k, v in extra.items() if v is not None}
        return cls(mode=mode, retries=0 if mode == "none" else retries, **given)  # type: ignore[arg-type]

    @property
    def spec(self) -> str:
        """The ``--retry`` value that gives this mode and count back."""
        return "none" if self.mode == "none" else f"{self.mode}:{self.retries}"


DEFAULT_RETRY = RetryPolicy()  # one jittered retry (a failover when there are replicas)


@dataclass(frozen=True)
class Attempt:
    """One try of one request on one replica."""

    replica: int
    outcome: str
    status: int | None = None      # the HTTP status, when an answer head came back
    retry_after_s: float | None = None
    retry_after: str | None = None  # the header as given (passed on to the client)
    error: str = ""                 # the exception's class name, for transport failures
    body: bytes = b""

    def describe(self) -> str:
        if self.outcome == TIMEOUT:
            return f"replica {self.replica} timed out"
        if self.status is not None:
            return f"replica {self.replica} answered {self.status}"
        return f"replica {self.replica} {self.outcome} ({self.error})" if self.error else f"replica {self.replica} {self.outcome}"


@dataclass(frozen=True)
class Next:
    replica: int
    wait_s: float          # sleep this long first
    timeout_s: float       # then give the attempt at most this long


@dataclass
class RetryPlan:
    """The attempts of one request: ``next()`` says where and when to try next, or ``None``."""

    policy: RetryPolicy
    replicas: int
    first: int                 # the replica of the first attempt (round robin across requests)
    started: float             # clock value when the request began
    deadline_s: float          # retries end by started + deadline_s
    timeout_s: float           # one attempt's own limit (the first attempt's, whole)
    rng: random.Random
    attempts: list[Attempt] = field(default_factory=list)
    _not_before: float = -math.inf  # the latest Retry-After of this request, as a clock value

    def record(self, attempt: Attempt, now: float) -> None:
        self.attempts.append(attempt)
        if attempt.retry_after_s is not None:
            self._not_before = max(self._not_before, now + attempt.retry_after_s)

    def next(self, now: float) -> Next | None:
        deadline = self.started + self.deadline_s
        if not self.attempts:
            return Next(self.first, 0.0, self.timeout_s)
        last = self.attempts[-1]
        if last.outcome not in RETRYABLE or len(self.attempts) >= self.policy.max_attempts:
            return None
        wait = self.policy.backoff_s(len(self.attempts), self.rng)
        if self.policy.mode == "backoff":
            wait = max(wait, self._not_before - now)
        if now + wait >= deadline:
            return None  # no time left for another try: give up now rather than hold the client
        return Next((last.replica + 1) % self.replicas, wait, min(self.timeout_s, deadline - now - wait))
