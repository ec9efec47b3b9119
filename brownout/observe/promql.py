"""A small async client for Prometheus' HTTP API: instant queries (``/api/v1/query``).

Errors are the project's own: a Prometheus that cannot be reached (refused, timed out, a
5xx from something in front of it) is ``Unreachable``; refused credentials are
``Unauthorized``; a query Prometheus rejects or answers with something a probe cannot
judge (a range vector, a string) is ``QueryFailed`` carrying Prometheus' own error text.
None of them is ``InvalidInput``: a run that meets them could not run (exit 4).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp
import yaml

from faults.errors import QueryFailed, Unauthorized, Unreachable

QUERY_PATH = "/api/v1/query"
CONFIG_PATH = "/api/v1/status/config"
_PROM_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
__all__ = ["BasicAuth", "PrometheusClient", "QueryFailed", "QueryResult", "Sample"]


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels (``__name__`` included when kept) and value."""

    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp: float

    @property
    def series(self) -> str:
        """The series as PromQL writes it: ``name{label="value", ...}`` (``{}`` for a scalar)."""
        name = ""
        pairs = []
        for key, value in self.labels:
            if key == "__name__":
                name = value
            else:
                pairs.append(f"{key}={json.dumps(value)}")
        return f"{name}{{{', '.join(pairs)}}}"


@dataclass(frozen=True)
class QueryResult:
    kind: Literal["vector", "scalar"]
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str


class PrometheusClient:
    """Instant queries against one Prometheus; one pooled session, closed with ``close()``."""

    def __init__(self, url: str, *, bearer_token: str | None = None, basic: BasicAuth | None = None,
                 timeout_s: float = 5.0) -> None:
        if bearer_token is not None and basic is not None:
            raise ValueError("give a bearer token or basic credentials, not both")
        self.url = url.rstrip("/")
        self._headers: dict[str, str] = {}
        if bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        elif basic is not None:
            pair = f"{basic.username}:{basic.password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def query(self, expr: str, *, at: float | None = None) -> QueryResult:
        """Evaluate ``expr`` at ``at`` (Unix seconds; Prometheus' now when None)."""
        form = {"query": expr, "timeout": f"{self._timeout_s:g}s"}
        if at is not None:
            form["time"] = f"{at:.3f}"
        body, status = await self._post(form)
        return _result(body, status, self.url)

    async def scrape_interval(self) -> float | None:
        """Prometheus' global ``scrape_interval`` (its running configuration); None when it does not
        say (an API in front of it without ``/api/v1/status/config``, Thanos, Mimir...)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        try:
            async with self._session.get(self.url + CONFIG_PATH) as resp:
                body = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError, ValueError):
            return None
        data = body.get("data") if isinstance(body, dict) else None
        try:
            config = yaml.safe_load(data.get("yaml", "")) if isinstance(data, dict) else None
        except yaml.YAMLError:
            return None
        glob = config.get("global") if isinstance(config, dict) else None
        interval = glob.get("scrape_interval") if isinstance(glob, dict) else None
        return parse_prometheus_duration(interval) if isinstance(interval, str) else None

    async def _post(self, form: dict[str, str]) -> tuple[Any, int]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        where = self.url + QUERY_PATH
        try:
            async with self._session.post(where, data=form) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError) as exc:
            reason = "timed out" if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else str(exc) or type(exc).__name__
            raise Unreachable(f"Prometheus at {self.url} is unreachable: {reason}") from None
        if status in (401, 403):
            raise Unauthorized(f"Prometheus at {self.url} refused the credentials (HTTP {status})")
        try:
            return json.loads(raw), status
        except ValueError:
            text = raw[:200].decode("utf-8", "replace").strip()
            if status >= 500:
                raise Unreachable(f"Prometheus at {self.url} answered HTTP {status}: {text}") from None
            raise QueryFailed(f"{where} answered HTTP {status} without Prometheus' JSON (is this the "
                              f"Prometheus base URL?): {text}") from None


def _result(body: Any, status: int, url: str) -> QueryResult:
    if not isinstance(body, dict):
        raise QueryFailed(f"Prometheus at {url} answered HTTP {status} with JSON that is not an API response")
    if body.get("status") != "success":
        kind, text = body.get("errorType", "error"), body.get("error", "no error text")
        if status >= 500 and kind not in ("execution", "timeout", "bad_data"):
            raise Unreachable(f"Prometheus at {url} failed (HTTP {status}): {kind}: {text}")
        raise QueryFailed(f"Prometheus rejected the query: {kind}: {text}")
    raw = body.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    kind = data.get("resultType")
    try:
        if kind == "vector":
            return QueryResult("vector", tuple(_sample(s["metric"], s["value"]) for s in data["result"]))
        if kind == "scalar":
            return QueryResult("scalar", (_sample({}, data["result"]),))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise QueryFailed(f"Prometheus at {url} answered a malformed {kind}: {exc}") from None
    if kind == "matrix":
        raise QueryFailed("the query returns a range vector (matrix); a probe judges an instant vector "
                          "or a scalar: wrap the range in a function such as rate() or max_over_time()")
    raise QueryFailed(f"the query returns a {kind}; a probe judges an instant vector or a scalar")


def _sample(metric: dict[str, str], point: list[Any]) -> Sample:
    stamp, value = point
    return Sample(labels=tuple(sorted(metric.items())), value=float(value), timestamp=float(stamp))


def parse_prometheus_duration(text: str) -> float | None:
    """Prometheus' duration syntax (``15s``, ``1m30s``, ``500ms``) in seconds; None if it is not one."""
    parts = _PROM_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * _UNIT_S[u] for n, u in parts)
