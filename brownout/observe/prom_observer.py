"""The ``probes`` observer: every PromQL probe of ``steady_state.probes``, every window.

Each probe is asked with the instant-query API at the window's end (Unix time), one scrape
interval after it (the probe's ``delay``, else that Prometheus' global ``scrape_interval``,
read at preflight), so the window's last samples are in. Every series returned becomes a
measurement per term of the bound (SLI: the probe's name; subject: the series' labels); no
series is no data, which fails the window or not as ``on_empty`` says. A query that fails
mid-run (Prometheus gone, a timeout) is no data that does not fail (logged, its reason in
the verdict); at preflight it stops the run (exit 4).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import structlog

from brownout.experiment.probes import PromProbe
from brownout.observe.probes import ProbeVerdict, client_for, run_probe
from brownout.observe.promql import PrometheusClient
from brownout.steady.observations import Measurement, ObservedWindow, Observation
from faults.errors import BrownoutError

log = structlog.get_logger("brownout.observe.probes")
DEFAULT_DELAY_S = 15.0  # Prometheus' usual scrape interval, when it does not say its own


def _client_key(probe: PromProbe) -> tuple[object, ...]:
    return probe.prometheus, probe.auth, probe.timeout


def measurements(probe: PromProbe, verdict: ProbeVerdict) -> tuple[Measurement, ...]:
    """One measurement per returned series and term of the bound; one without a value for no series."""
    if not verdict.series:
        return (Measurement(probe.name, None, probe.bound[0].limit, probe.bound[0].op, on_empty=probe.on_empty,
                            phases=probe.phases, note=f"no data: {probe.query} returned no series"),)
    out = []
    for series in verdict.series:
        subject = "" if series.series == "{}" else series.series
        note = "NaN" if math.isnan(series.value) else None
        out += [Measurement(probe.name, series.value, term.limit, term.op, subject=subject, labels=series.labels,
                            on_empty=probe.on_empty, phases=probe.phases, note=note) for term in probe.bound]
    return tuple(out)


def unmeasured(probe: PromProbe, reason: str) -> Measurement:
    """No data because the query could not be made: counted as no data, never a failure."""
    return Measurement(probe.name, None, probe.bound[0].limit, probe.bound[0].op, on_empty="skip",
                       phases=probe.phases, note=f"not measured: {reason}")


class PromProbeObserver:
    name = "probes"

    def __init__(self, probes: Sequence[PromProbe]) -> None:
        self.probes = tuple(probes)
        self.timeout_s = max(p.timeout for p in self.probes) + 1.0
        self.delay_s = max((p.delay for p in self.probes if p.delay is not None), default=DEFAULT_DELAY_S)
        self.delays: dict[str, float] = {}  # per probe, as decided at preflight
        self._clients: dict[tuple[object, ...], PrometheusClient] = {}

    def _client(self, probe: PromProbe) -> PrometheusClient:
        key = _client_key(probe)
        if key not in self._clients:
            self._clients[key] = client_for(probe)
        return self._clients[key]

    async def start(self) -> None:
        """Every probe's query once, now: an unreachable Prometheus or a bad query stops the run."""
        intervals: dict[tuple[object, ...], float | None] = {}
        for probe in self.probes:
            client = self._client(probe)
            await run_probe(probe, client)  # raises Unreachable, Unauthorized, QueryFailed
            if probe.delay is not None:
                self.delays[probe.name] = probe.delay
                continue
            key = _client_key(probe)
            if key not in intervals:
                intervals[key] = await client.scrape_interval()
                if intervals[key] is None:
                    log.warning("scrape_interval_unknown", prometheus=probe.prometheus, assumed_s=DEFAULT_DELAY_S,
                                note="set the probe's delay to the scrape interval")
            self.delays[probe.name] = intervals[key] or DEFAULT_DELAY_S
        self.delay_s = max(self.delays.values())

    async def _one(self, probe: PromProbe, window: ObservedWindow) -> tuple[Measurement, ...]:
        try:
            return measurements(probe, await run_probe(probe, self._client(probe), at=window.wall_end))
        except BrownoutError as exc:
            log.warning("probe_failed", probe=probe.name, window=window.index, error=str(exc))
            return (unmeasured(probe, str(exc)),)

    async def observe(self, window: ObservedWindow) -> Observation:
        results = await asyncio.gather(*(self._one(p, window) for p in self.probes))
        return Observation(self.name, window.index, tuple(m for ms in results for m in ms))

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
