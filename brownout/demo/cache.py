"""Redis cache of recent scores, failing open the way production caches do.

With no URL the model API runs uncached and says so once. With a URL, every Redis error
or timeout (a killed server, a reset or slowed tcp route) turns the operation into a miss;
the transition to "unavailable" and back is logged once each, not per request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("brownout.demo.cache")


@dataclass(frozen=True)
class CachedScore:
    score: float
    model_version: str


class ScoreCache:
    def __init__(self, url: str | None, *, ttl_s: float = 5.0, timeout_s: float = 0.05) -> None:
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.hits = 0
        self.misses = 0
        self._healthy = True
        self._client: Redis | None = None
        if url is None:
            log.warning("cache_disabled", reason="no redis URL; running uncached")
            return
        # No retries: a cache must never make a request slower than skipping it would.
        self._client = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry_on_timeout=False, retry=None, health_check_interval=0,
        )

    @property
    def enabled(self) -> bool:
        return self._client is not None

    @property
    def healthy(self) -> bool:
        return self._client is not None and self._healthy

    def _failed(self, exc: Exception) -> None:
        if self._healthy:
            log.warning("cache_unavailable", error=repr(exc), note="serving uncached until it answers")
        self._healthy = False

    def _ok(self) -> None:
        if not self._healthy:
            log.info("cache_recovered")
        self._healthy = True

    async def get(self, key: str) -> CachedScore | None:
        if self._client is None:
            return None
        try:
            raw = await self._client.get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._ok()
        try:
            data = json.loads(raw) if raw is not None else None
            hit = CachedScore(score=float(data["score"]), model_version=str(data["model_version"])) if data else None
        except (ValueError, TypeError, KeyError):
            hit = None  # an unreadable entry is a miss, not an error
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    async def put(self, key: str, value: CachedScore) -> None:
        if self._client is None:
            return
        payload = json.dumps({"score": value.score, "model_version": value.model_version})
        try:
            await self._client.set(key, payload, px=self.ttl_ms)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._ok()

    async def ping(self) -> bool:
        if self._client is None:
            return False
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False
        self._ok()
        return True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
