"""The probes that run beside the load: golden cases and LLM streams, both fed to the checker."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import aiohttp

from brownout.experiment.model import Experiment
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.golden import GoldenProber, GoldenSet, load_golden
from brownout.steady.streams import StreamProber

_GOLDEN_CACHE: dict[Path, GoldenSet] = {}


def golden_set(path: Path) -> GoldenSet:
    """Loaded once per run (baseline and method probe the same set)."""
    if path not in _GOLDEN_CACHE:
        _GOLDEN_CACHE[path] = load_golden(path)
    return _GOLDEN_CACHE[path]


def stream_timeout(exp: Experiment) -> float:
    streams = exp.steady_state.streams
    return streams.timeout if streams is not None and streams.timeout is not None else exp.load.timeout


def probe_grace(exp: Experiment) -> float:
    """How long after a window ends its answers may still come in (requests and streams)."""
    return max(exp.load.timeout, stream_timeout(exp) if exp.steady_state.streams is not None else 0.0)


def start_probes(exp: Experiment, session: aiohttp.ClientSession, clock: Callable[[], float],
                 checker: SteadyStateChecker, stop: asyncio.Event) -> asyncio.Future[object] | None:
    """Start every probe the experiment asks for; they run until ``stop`` is set."""
    tasks = []
    predictions = exp.steady_state.predictions
    if predictions is not None and predictions.golden is not None:
        golden = GoldenProber(session, exp.target.url, golden_set(predictions.golden), predictions.probe_interval,
                              clock, checker.feed_probe, timeout=exp.load.timeout)
        tasks.append(golden.run(stop))
    streams = exp.steady_state.streams
    if streams is not None:
        prober = StreamProber(session, streams.url or exp.target.url, dict(streams.body), streams.interval, clock,
                              checker.feed_stream, timeout=stream_timeout(exp), headers=dict(streams.headers),
                              expect=re.compile(streams.expect) if streams.expect is not None else None)
        tasks.append(prober.run(stop))
    return asyncio.ensure_future(asyncio.gather(*tasks)) if tasks else None
