"""Recordings: started from the config or the admin API, ended by their duration, lease or the kill switch.

A recording is a lease like a fault: it records for its ``duration`` unless its lease
(``ttl``, renewed with ``PATCH``) runs out first, ``PATCH {end: true}`` ends it, or the kill
switch (``DELETE /faults``) ends every recording at once. A route's ``record:`` in the
config starts a recording with no duration or lease when the proxy starts; the kill switch
ends it too (as it removes the config's faults). An ended recording keeps its data until
``DELETE /recordings/{id}`` or until ``record.max_bytes`` rotates it out; ``GET`` lists this
process's recordings (files from earlier runs stay in ``record.dir``, and count against its cap).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from prometheus_client.registry import CollectorRegistry

from faults.errors import Conflict, InvalidInput, NotFound
from proxy.config import FaultTtlConfig, ProxyConfig
from proxy.leases import _iso
from proxy.recording.capture import Recorder, Sampler
from proxy.recording.channel import RecordingMetrics, WriterChannel
from proxy.recording.config import RecordConfig, RecordingRequest
from proxy.recording.frames import RecordingStats
from proxy.recording.redact import Redaction

log = structlog.get_logger("brownout.proxy")
_SWEEP_S = 0.1
_READ = 256 * 1024


class RecordedRoute(Protocol):
    """What the service sets on an http route: its recorder while a recording is active on it, else None."""

    recorder: Recorder | None


@dataclass(eq=False)
class Recording:
    id: str
    route: str
    sampler: Sampler
    redaction: Redaction
    started_at: float  # wall clock
    ends_at: float | None  # None: until ended (a config recording)
    expires_at: float | None  # the lease; None: no lease
    static: bool = False
    ended_at: float | None = None
    end_reason: str | None = None  # duration, lease, kill_switch, stopped, shutdown
    stats: RecordingStats = field(default_factory=RecordingStats)

    @property
    def running(self) -> bool:
        return self.ended_at is None

    def as_json(self, dropped_here: Mapping[str, int]) -> dict[str, Any]:
        dropped = dict(self.stats.dropped)
        for reason, n in dropped_here.items():
            dropped[reason] = dropped.get(reason, 0) + n
        return {
            "id": self.id, "route": self.route, "sample": self.sampler.sample,
            "state": "recording" if self.running else "ended", "static": self.static,
            "started_at": _iso(self.started_at), "ends_at": _iso(self.ends_at) if self.ends_at else None,
            "expires_at": _iso(self.expires_at) if self.expires_at and self.running else None,
            "ended_at": _iso(self.ended_at) if self.ended_at else None, "end_reason": self.end_reason,
            "lines": self.stats.lines, "bytes": self.stats.bytes, "dropped": dict(sorted(dropped.items())),
            "segments": len(self.stats.segments), "deleted_segments": self.stats.deleted_segments,
            "deleted_lines": self.stats.deleted_lines,
            "redact": self.redaction.model_dump(mode="json"),
        }


def merge(*redactions: Redaction) -> Redaction:
    return Redaction(**{key: tuple(dict.fromkeys(v for r in redactions for v in getattr(r, key)))
                        for key in ("headers", "json_paths", "patterns")})


class RecordingService:
    def __init__(self, config: ProxyConfig, registry: CollectorRegistry,
                 routes: Mapping[str, RecordedRoute], *,
                 wall: Callable[[], float] = time.time) -> None:
        self.config: RecordConfig | None = config.record
        self._ttl: FaultTtlConfig = config.fault_ttl
        self._route_configs = {r.name: r for r in config.routes}
        self._routes = routes
        self._wall = wall
        self.metrics = RecordingMetrics(registry)
        self.recordings: dict[str, Recording] = {}
        self.channel: WriterChannel | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle

    async def start(self) -> None:
        if self.config is None:
            return
        self.channel = WriterChannel(self.config, self.metrics, self._stats)
        await self.channel.start()
        for route in self._route_configs.values():
            if route.record is not None:
                self.start_recording(route.name, route.record.sample, None, None, route.record.redact, static=True)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="recording-sweeper")

    async def close(self) -> None:
        """At shutdown (after the routes drained): end every recording, let the writer finish."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.end_all("shutdown")
        if self.channel is not None:
            await self.channel.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = self._wall()
            for rec in [r for r in self.recordings.values() if r.running]:
                if rec.ends_at is not None and rec.ends_at <= now:
                    self.end(rec.id, "duration")
                elif rec.expires_at is not None and rec.expires_at <= now:
                    self.end(rec.id, "lease")

    # -- the admin API's operations

    def start_request(self, request: RecordingRequest) -> Recording:
        duration = self._bounded(request.duration, "duration") if request.duration is not None else self._ttl.default
        ttl = self._bounded(request.ttl, "ttl") if request.ttl is not None else duration
        return self.start_recording(request.route, request.sample, duration, ttl, request.redact)

    def start_recording(self, route: str, sample: float, duration: float | None, ttl: float | None,
                        redact: Redaction, *, static: bool = False) -> Recording:
        config = self._route_configs.get(route)
        if config is None or config.kind != "http":
            http = sorted(name for name, r in self._route_configs.items() if r.kind == "http")
            raise InvalidInput(f"no http route {route!r}; http routes: {', '.join(http)}", "route")
        if self.config is None or self.channel is None:
            raise Conflict("recording is off on this proxy: set record.dir in its config to allow it")
        now = self._wall()
        rid = f"rec-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{secrets.token_hex(4)}"
        rec = Recording(rid, route, Sampler(rid, sample, random.Random(secrets.randbits(64))),
                        merge(self.config.redact, redact), now,
                        None if duration is None else now + duration, None if ttl is None else now + ttl, static)
        self.recordings[rid] = rec
        self.channel.send(("open", rid, route, rec.redaction))
        self._attach(rec)
        log.info("recording_started", recording=rid, route=route, sample=sample, duration_s=duration, static=static)
        return rec

    def _bounded(self, seconds: float, field_name: str) -> float:
        if seconds <= 0:
            raise InvalidInput("must be > 0", field_name)
        if seconds > self._ttl.max:
            raise InvalidInput(f"must be <= the proxy's maximum lease of {self._ttl.max:g}s (fault_ttl.max)", field_name)
        return seconds

    def get(self, rid: str) -> Recording:
        try:
            return self.recordings[rid]
        except KeyError:
            raise NotFound(f"no recording with id {rid!r}") from None

    def describe(self, rec: Recording) -> dict[str, Any]:
        return rec.as_json(self.metrics.by_recording.get(rec.id, {}))

    def renew(self, rid: str, ttl: float) -> Recording:
        rec = self.get(rid)
        if not rec.running:
            raise Conflict(f"recording {rid!r} has ended")
        if rec.expires_at is None:
            raise Conflict(f"recording {rid!r} comes from the config file and has no lease to renew")
        rec.expires_at = self._wall() + self._bounded(ttl, "ttl")
        return rec

    def end(self, rid: str, reason: str) -> Recording:
        """Stop recording (idempotent); the data stays."""
        rec = self.get(rid)
        if rec.running:
            rec.ended_at, rec.end_reason = self._wall(), reason
            self._detach(rec)
            if self.channel is not None:
                self.channel.send(("close", rid))
            log.info("recording_ended", recording=rid, route=rec.route, reason=reason)
        return rec

    def end_all(self, reason: str) -> list[str]:
        running = [r.id for r in self.recordings.values() if r.running]
        for rid in running:
            self.end(rid, reason)
        return running

    async def remove(self, rid: str) -> Recording:
        """End it and delete its files: they are gone when this returns."""
        rec = self.end(rid, "stopped")
        del self.recordings[rid]
        self.metrics.by_recording.pop(rid, None)
        if self.channel is not None:
            self.channel.send(("delete", rid))
            await self.channel.flush()
        log.info("recording_deleted", recording=rid, route=rec.route)
        return rec

    async def data(self, rid: str) -> AsyncIterator[bytes]:
        """The recording's lines, segment after segment, as written so far."""
        self.get(rid)
        if self.channel is not None:
            await self.channel.flush()
        assert self.config is not None
        for name in list(self.recordings[rid].stats.segments if rid in self.recordings else ()):
            try:
                fd = os.open(self.config.dir / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # rotated out meanwhile
            try:
                while chunk := await asyncio.to_thread(os.read, fd, _READ):
                    yield chunk
            finally:
                os.close(fd)

    # -- the data path's view

    def _attach(self, rec: Recording) -> None:
        assert self.channel is not None and self.config is not None
        route = self._routes[rec.route]
        if route.recorder is None:
            route.recorder = Recorder(rec.route, self.channel, self.metrics, self.config.max_body)
        route.recorder.samplers += (rec.sampler,)

    def _detach(self, rec: Recording) -> None:
        route = self._routes[rec.route]
        if route.recorder is None:
            return
        route.recorder.samplers = tuple(s for s in route.recorder.samplers if s is not rec.sampler)
        if not route.recorder.samplers:
            route.recorder = None  # nothing recorded: the route pays one test per request

    def _stats(self, stats: Mapping[str, RecordingStats]) -> None:
        """The writer's cumulative counts: keep them, and add what is new to the route's metrics."""
        metrics = self.metrics
        for rid, new in stats.items():
            rec = self.recordings.get(rid)
            if rec is None:
                continue
            old = rec.stats
            route = rec.route
            metrics.lines[route] = metrics.lines.get(route, 0) + new.lines - old.lines
            metrics.bytes[route] = metrics.bytes.get(route, 0) + new.bytes - old.bytes
            for reason, n in new.dropped.items():
                if n > old.dropped.get(reason, 0):
                    metrics.drop(route, reason, n - old.dropped.get(reason, 0))
            rec.stats = new
