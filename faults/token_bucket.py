"""Token buckets on an explicit clock, one pair (requests, tokens) per key, bounded in memory.

A bucket holds up to ``capacity`` and refills at ``per_s``; a request is granted when the level
covers its cost (or, for a cost above the capacity, when the bucket is full: it could never be
granted otherwise) and takes the cost, which may leave the level below zero (a debt that later
requests wait out). Every time is an argument, so tests drive the buckets with a fake clock.

Keys are kept in least-recently-used order. A key whose buckets have refilled to capacity is
exactly a key never seen, so it is dropped when it reaches the old end; past ``max_keys`` the
least recently used key is dropped whatever its level.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

_EPSILON = 1e-9  # float sums of many small refills land a hair under whole numbers


@dataclass(frozen=True, slots=True)
class Rate:
    """Refill per second and capacity (the burst)."""

    per_s: float
    capacity: float


class Bucket:
    __slots__ = ("level", "at")

    def __init__(self, level: float, at: float) -> None:
        self.level = level
        self.at = at

    def refill(self, rate: Rate, now: float) -> None:
        if now > self.at:
            self.level = min(rate.capacity, self.level + (now - self.at) * rate.per_s)
            self.at = now

    def wait_s(self, rate: Rate, cost: float) -> float:
        """Seconds until the level covers ``cost`` (0 when it does now)."""
        need = min(cost, rate.capacity) - self.level
        return 0.0 if need <= _EPSILON else need / rate.per_s

    def full_in_s(self, rate: Rate) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, rate.capacity - self.level) / rate.per_s

    def remaining(self) -> int:
        return max(0, math.floor(self.level + _EPSILON))


class BucketPair:
    """A key's buckets: one for requests, one for tokens (either may be unused)."""

    __slots__ = ("requests", "tokens")

    def __init__(self, requests: Bucket, tokens: Bucket) -> None:
        self.requests = requests
        self.tokens = tokens


@dataclass(frozen=True, slots=True)
class Verdict:
    """One admission decision: granted, or the limit that refused and how long to wait."""

    granted: bool
    limit: str = ""  # "requests" or "tokens" when refused
    wait_s: float = 0.0


GRANTED = Verdict(True)


class KeyedBuckets:
    """Bucket pairs by key, with the rates they refill at."""

    def __init__(self, requests: Rate | None, tokens: Rate | None, max_keys: int) -> None:
        self.requests_rate = requests
        self.tokens_rate = tokens
        self.max_keys = max_keys
        self.pairs: OrderedDict[str, BucketPair] = OrderedDict()

    def __len__(self) -> int:
        return len(self.pairs)

    def pair(self, key: str, now: float) -> BucketPair:
        """The key's buckets, refilled to ``now`` (new keys start full)."""
        pairs = self.pairs
        pair = pairs.get(key)
        if pair is None:
            self._evict(now)
            pair = pairs[key] = BucketPair(self._fresh(self.requests_rate, now), self._fresh(self.tokens_rate, now))
        else:
            pairs.move_to_end(key)
            self._refill(pair, now)
        return pair

    def admit(self, key: str, tokens: float, now: float) -> tuple[Verdict, BucketPair]:
        """Take one request and ``tokens`` from ``key``'s buckets, or say which limit refuses and for how long."""
        pair = self.pair(key, now)
        rr, tr = self.requests_rate, self.tokens_rate
        wait_requests = pair.requests.wait_s(rr, 1.0) if rr is not None else 0.0
        wait_tokens = pair.tokens.wait_s(tr, tokens) if tr is not None else 0.0
        if wait_requests > 0 or wait_tokens > 0:
            limit = "requests" if wait_requests >= wait_tokens else "tokens"
            return Verdict(False, limit, max(wait_requests, wait_tokens)), pair
        if rr is not None:
            pair.requests.level -= 1.0
        if tr is not None:
            pair.tokens.level -= tokens
        return GRANTED, pair

    def settle(self, key: str, delta_tokens: float, now: float) -> None:
        """Give back (``delta_tokens`` > 0) or charge more (< 0) tokens once the real cost is known."""
        pair = self.pairs.get(key)
        if pair is None or self.tokens_rate is None:
            return  # dropped meanwhile: it refilled to full, and a refund could not raise it further
        self._refill(pair, now)
        pair.tokens.level = min(self.tokens_rate.capacity, pair.tokens.level + delta_tokens)

    def reconfigure(self, requests: Rate | None, tokens: Rate | None, max_keys: int, now: float | None) -> None:
        """New rates from ``now``: every bucket is refilled under the old ones first, then capped."""
        if now is not None:
            for pair in self.pairs.values():
                self._refill(pair, now)
        for pair in self.pairs.values():
            _retarget(pair.requests, self.requests_rate, requests, now)
            _retarget(pair.tokens, self.tokens_rate, tokens, now)
        self.requests_rate, self.tokens_rate, self.max_keys = requests, tokens, max_keys
        while len(self.pairs) > max_keys:
            self.pairs.popitem(last=False)

    def _refill(self, pair: BucketPair, now: float) -> None:
        if self.requests_rate is not None:
            pair.requests.refill(self.requests_rate, now)
        if self.tokens_rate is not None:
            pair.tokens.refill(self.tokens_rate, now)

    def _full(self, pair: BucketPair, now: float) -> bool:
        self._refill(pair, now)
        rr, tr = self.requests_rate, self.tokens_rate
        return ((rr is None or pair.requests.level >= rr.capacity - _EPSILON)
                and (tr is None or pair.tokens.level >= tr.capacity - _EPSILON))

    def _evict(self, now: float) -> None:
        pairs = self.pairs
        while pairs and self._full(next(iter(pairs.values())), now):
            pairs.popitem(last=False)
        while len(pairs) >= self.max_keys:
            pairs.popitem(last=False)

    @staticmethod
    def _fresh(rate: Rate | None, now: float) -> Bucket:
        return Bucket(rate.capacity if rate is not None else 0.0, now)


def _retarget(bucket: Bucket, old: Rate | None, new: Rate | None, now: float | None) -> None:
    """A bucket moves to a new rate: capped at the new capacity; a limit added later starts full."""
    if new is None:
        return
    if old is None:
        bucket.level = new.capacity
    else:
        bucket.level = min(bucket.level, new.capacity)
    if now is not None:
        bucket.at = now
