"""The one per-window reader of every Brownout sidecar's ``/metrics``.

At each window boundary ``SidecarReader`` scrapes every sidecar's admin ``/metrics`` (no
token needed), parses it with prometheus_client's text parser and keeps, per sidecar, the
increase of every counter over the window (``brownout_requests_total{route,status}``,
``brownout_faults_injected_total{route,kind}``, ``process_cpu_seconds_total``, ...):

    window = reader.deltas(7)                      # a SidecarWindow, or None if not read
    window.requests("gpu-worker")                  # requests on that route, all sidecars
    window.requests("gpu-worker", sidecar=url)     # ... on one sidecar
    window.by_status("gpu-worker")                 # {"200": 180, "429": 20}
    window.counter("brownout_faults_injected_total", route="gpu-worker", kind="rate_limit")

A counter that went down, or a new ``process_start_time_seconds``, is a restart: the window
counts what the new process counted (what the old one counted after the previous reading is
lost). A sidecar that cannot be read has no data for that window (logged, noted in the
journal) and none for the next one either (a delta needs two readings); the run goes on.

Consumers that judge the counters (fleet SLIs, retry amplification) register a ``Judge``:
it gets the window's deltas and the load generator's figures of the same window, and
returns ``Measurement``s, which become verdicts like any other SLI.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import structlog
from prometheus_client.parser import text_string_to_metric_families

from brownout.steady.observations import Detail, Measurement, ObservedWindow, Observation
from brownout.windows import WindowStats
from faults.errors import Unreachable

log = structlog.get_logger("brownout.observe.sidecars")

REQUESTS = "brownout_requests_total"
START_TIME = "process_start_time_seconds"
KEEP_WINDOWS = 512  # deltas kept for ``deltas()``; the journal keeps them all

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]  # (sample name, sorted label pairs)
Judge = Callable[["SidecarWindow", WindowStats], Sequence[Measurement]]


@dataclass(frozen=True)
class Reading:
    """One scrape of one sidecar: every counter sample, and when its process started."""

    counters: Mapping[SeriesKey, float]
    started_at: float | None


def parse_metrics(text: str) -> Reading:
    """Counters (``*_total`` samples of counter families, or untyped) and ``process_start_time_seconds``."""
    counters: dict[SeriesKey, float] = {}
    started_at = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.type in ("counter", "unknown") and sample.name.endswith("_total"):
                counters[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
            elif sample.name == START_TIME:
                started_at = float(sample.value)
    return Reading(counters, started_at)


def increase(before: Reading, after: Reading) -> tuple[dict[SeriesKey, float], bool]:
    """Each counter's increase from ``before`` to ``after``, and whether the process restarted."""
    restarted = (before.started_at is not None and after.started_at is not None
                 and abs(after.started_at - before.started_at) > 1e-3)
    restarted = restarted or any(value < before.counters.get(key, 0.0) for key, value in after.counters.items())
    if restarted:
        return dict(after.counters), True
    return {key: value - before.counters.get(key, 0.0) for key, value in after.counters.items()}, False


def _matches(labels: Labels, wanted: Mapping[str, str]) -> bool:
    if not wanted:
        return True
    have = dict(labels)
    return all(have.get(k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class SidecarDelta:
    """One sidecar's counter increases over a window; ``counters`` None is no data (``note`` says why)."""

    sidecar: str                                  # its admin URL
    counters: Mapping[SeriesKey, float] | None
    restarted: bool = False
    note: str | None = None
    missing: int = 0                              # merged windows without data (a phase)

    def total(self, name: str, **labels: str) -> float | None:
        if self.counters is None:
            return None
        return sum(v for (n, ls), v in self.counters.items() if n == name and _matches(ls, labels))

    def merge(self, other: SidecarDelta) -> SidecarDelta:
        if self.counters is None or other.counters is None:
            kept = other if self.counters is None else self
            return replace(kept, missing=self.missing + other.missing + 1, note=kept.note or self.note or other.note)
        summed = dict(self.counters)
        for key, value in other.counters.items():
            summed[key] = summed.get(key, 0.0) + value
        return SidecarDelta(self.sidecar, summed, self.restarted or other.restarted, self.note or other.note,
                            self.missing + other.missing)

    def routes(self) -> dict[str, dict[str, int]]:
        """Requests by route and status code."""
        out: dict[str, dict[str, int]] = {}
        for (name, labels), value in sorted((self.counters or {}).items()):
            if name == REQUESTS and value:
                ls = dict(labels)
                statuses = out.setdefault(ls.get("route", ""), {})
                statuses[ls.get("status", "")] = statuses.get(ls.get("status", ""), 0) + round(value)
        return out

    def as_dict(self) -> dict[str, Any]:
        routes = self.routes()
        return {"ok": self.counters is not None, "restarted": self.restarted, "note": self.note,
                "windows_without_data": self.missing,
                "requests": None if self.counters is None else sum(sum(s.values()) for s in routes.values()),
                "routes": {r: {"requests": sum(s.values()), "statuses": s} for r, s in routes.items()}}


@dataclass(frozen=True)
class SidecarWindow:
    """Every sidecar's counter increases over one window (``index`` -1: a phase, merged)."""

    index: int
    sidecars: tuple[SidecarDelta, ...]
    judges: tuple[Judge, ...] = ()
    stats: WindowStats | None = field(default=None, compare=False)

    def _selected(self, sidecar: str | None) -> list[SidecarDelta]:
        return [s for s in self.sidecars if sidecar is None or s.sidecar == sidecar]

    def counter(self, name: str, sidecar: str | None = None, **labels: str) -> float | None:
        """The increase of counter samples ``name`` whose labels match, summed over the sidecars
        read (one when ``sidecar`` names its admin URL); None when none of them has data."""
        values = [v for s in self._selected(sidecar) if (v := s.total(name, **labels)) is not None]
        return sum(values) if values else None

    def requests(self, route: str | None = None, sidecar: str | None = None, status: str | int | None = None) -> int | None:
        """Requests a route served (every route when None), from the proxy's own count."""
        labels = {k: str(v) for k, v in (("route", route), ("status", status)) if v is not None}
        value = self.counter(REQUESTS, sidecar, **labels)
        return None if value is None else round(value)

    def by_status(self, route: str | None = None, sidecar: str | None = None) -> dict[str, int]:
        """Requests by status code (``"200"``, ``"503"``, ...) on a route, or on every route."""
        out: dict[str, int] = {}
        for s in self._selected(sidecar):
            for name, statuses in s.routes().items():
                if route is None or name == route:
                    for status, n in statuses.items():
                        out[status] = out.get(status, 0) + n
        return out

    # -- Detail: journal, phases, judges

    def settle(self, stats: WindowStats) -> SidecarWindow:
        return replace(self, stats=stats)

    def measurements(self) -> tuple[Measurement, ...]:
        if self.stats is None:
            return ()
        return tuple(m for judge in self.judges for m in judge(self, self.stats))

    def merge(self, other: Detail) -> SidecarWindow:
        assert isinstance(other, SidecarWindow)
        mine = {s.sidecar: s for s in self.sidecars}
        theirs = {s.sidecar: s for s in other.sidecars}
        merged = tuple(mine[k].merge(theirs[k]) if k in mine and k in theirs else mine.get(k) or theirs[k]
                       for k in dict.fromkeys([*mine, *theirs]))
        return SidecarWindow(-1, merged, self.judges)

    def as_dict(self) -> dict[str, Any]:
        return {s.sidecar: s.as_dict() for s in self.sidecars}


class SidecarReader:
    """The ``sidecars`` observer: every sidecar's ``/metrics`` at every window boundary."""

    name = "sidecars"

    def __init__(self, admins: Iterable[str], *, judges: Sequence[Judge] = (), delay_s: float = 0.0,
                 timeout_s: float = 2.0) -> None:
        self.admins = tuple(dict.fromkeys(a.rstrip("/") for a in admins))
        self.judges = list(judges)
        self.delay_s = delay_s
        self.timeout_s = timeout_s
        self._last: dict[str, tuple[int, Reading] | None] = {}  # the reading ending window i
        self._windows: OrderedDict[int, SidecarWindow] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    def add_judge(self, judge: Judge) -> None:
        """Judge every window's deltas (with the load generator's figures of it)."""
        self.judges.append(judge)

    def deltas(self, index: int) -> SidecarWindow | None:
        """What window ``index`` counted, once it was read (the latest ``KEEP_WINDOWS``)."""
        return self._windows.get(index)

    async def _read(self, admin: str) -> Reading:
        assert self._session is not None
        try:  # each sidecar gets most of the budget, so one slow sidecar does not cost the others
            timeout = aiohttp.ClientTimeout(total=self.timeout_s * 0.8)
            async with self._session.get(admin + "/metrics", timeout=timeout) as resp:
                if resp.status != 200:
                    raise Unreachable(f"sidecar {admin}: GET /metrics answered HTTP {resp.status}")
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError, OSError) as exc:
            reason = "timed out" if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) else str(exc) or type(exc).__name__
            raise Unreachable(f"sidecar {admin}: /metrics is unreachable: {reason}") from None
        try:
            return parse_metrics(text)
        except ValueError as exc:
            raise Unreachable(f"sidecar {admin}: /metrics is not Prometheus text: {exc}") from None

    async def start(self) -> None:
        """The first reading of every sidecar; one that cannot be read stops the run."""
        self._session = aiohttp.ClientSession()
        for admin in self.admins:
            self._last[admin] = (-1, await self._read(admin))

    async def read_now(self, index: int) -> SidecarWindow:
        """Read every sidecar now: the deltas since the previous reading, as window ``index``."""
        async with self._lock:
            results = await asyncio.gather(*(self._read(a) for a in self.admins), return_exceptions=True)
            deltas = []
            for admin, result in zip(self.admins, results, strict=True):
                before = self._last.get(admin)
                if isinstance(result, BaseException):
                    if not isinstance(result, Unreachable):
                        raise result
                    log.warning("sidecar_unreadable", sidecar=admin, window=index, error=str(result))
                    self._last[admin] = None
                    deltas.append(SidecarDelta(admin, None, note=str(result)))
                    continue
                self._last[admin] = (index, result)
                if before is None or before[0] != index - 1:
                    deltas.append(SidecarDelta(admin, None, note="no reading at the window's start (unreachable "
                                                                 "or not read then)"))
                else:
                    counters, restarted = increase(before[1], result)
                    note = "restarted: what it counted since the previous reading, before restarting, is lost" \
                        if restarted else None
                    deltas.append(SidecarDelta(admin, counters, restarted, note))
            window = SidecarWindow(index, tuple(deltas), tuple(self.judges))
            self._windows[index] = window
            while len(self._windows) > KEEP_WINDOWS:
                self._windows.popitem(last=False)
            return window

    async def observe(self, window: ObservedWindow) -> Observation:
        return Observation(self.name, window.index, detail=await self.read_now(window.index))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
