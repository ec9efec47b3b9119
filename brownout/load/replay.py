"""Replaying a recording: its requests in recorded order at recorded times, and the answers it holds.

``load: {shape: replay, speed: 2.0, payloads: rec.jsonl}`` sends the recording's requests in
the order they started (``ts``), the k-th at ``(ts_k - ts_0) / speed`` seconds: open loop,
the recorded inter-arrival times scaled, whatever the server does. Its duration is the
recording's span divided by ``speed`` (the last request is sent at the very end).

A recording used as ``payloads`` by any other shape is sampled as any corpus; either way
each request carries the index of its line (``RequestRecord.payload``), so the replay
agreement SLI (``brownout.steady.replay``) finds the answer recorded for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from brownout.load.payloads import RequestTemplate, load_corpus
from brownout.load.shapes import Segment
from faults.errors import InvalidInput
from proxy.recording import RecordedResponse, read_lines

_BUCKET_S = 1.0  # rate_at/segments: arrivals counted per second (progress, baseline rate)


@dataclass(frozen=True)
class Recorded:
    """A recording's lines as payloads: templates, answers and start times, index for index."""

    source: Path
    templates: tuple[RequestTemplate, ...]
    responses: tuple[RecordedResponse | None, ...]
    ts: tuple[float | None, ...]
    lines: tuple[int, ...]  # each entry's line in the file (1-based)


def load_recorded(path: str | Path, *, by_time: bool = False) -> Recorded:
    """Read a corpus or recording; ``by_time``: in the order the requests started (every line needs ``ts``)."""
    p = Path(path)
    templates = load_corpus(p)
    lines = [(lineno, line) for lineno, line in read_lines(p)]
    if by_time:
        for lineno, line in lines:
            if line.ts is None:
                raise InvalidInput("a replay needs the time each request started (ts) on every line", "payloads.ts",
                                   source=str(p), line=lineno)
        order = sorted(range(len(lines)), key=lambda i: lines[i][1].ts)  # type: ignore[arg-type, return-value]
    else:
        order = list(range(len(lines)))
    return Recorded(p, tuple(templates[i] for i in order), tuple(lines[i][1].response for i in order),
                    tuple(lines[i][1].ts for i in order), tuple(lines[i][0] for i in order))


@dataclass(frozen=True, slots=True)
class ReplayShape:
    """Arrivals at the recorded offsets divided by ``speed``; a load shape like the others."""

    name: ClassVar[str] = "replay"
    offsets: tuple[float, ...]  # seconds from the first request, ascending, already scaled
    speed: float

    @property
    def duration(self) -> float:
        return self.offsets[-1] if self.offsets else 0.0

    @property
    def mean_rate(self) -> float:
        return len(self.offsets) / self.duration if self.duration > 0 else float(len(self.offsets))

    def arrival_offsets(self) -> Iterator[float]:
        return iter(self.offsets)

    def rate_at(self, t: float) -> float:
        if not 0.0 <= t <= self.duration:
            return 0.0
        start = math.floor(t / _BUCKET_S) * _BUCKET_S
        return sum(1 for o in self.offsets if start <= o < start + _BUCKET_S) / _BUCKET_S

    def segments(self) -> tuple[Segment, ...]:
        """Per-second constant rates (for the live view and rate integrals; arrivals are ``offsets``)."""
        buckets = max(1, math.ceil(self.duration / _BUCKET_S))
        counts = [0] * buckets
        for o in self.offsets:
            counts[min(buckets - 1, int(o // _BUCKET_S))] += 1
        out = []
        for i, n in enumerate(counts):
            end = min(self.duration, (i + 1) * _BUCKET_S)
            start = i * _BUCKET_S
            if end > start:
                out.append(Segment(start, end, n / (end - start), n / (end - start)))
        return tuple(out)


def replay_shape(recorded: Recorded, speed: float, field: str = "load") -> ReplayShape:
    if not (math.isfinite(speed) and speed > 0):
        raise InvalidInput(f"must be > 0, got {speed!r}", f"{field}.speed")
    starts = [t for t in recorded.ts if t is not None]
    if len(starts) < 2 or starts[-1] - starts[0] <= 0:
        raise InvalidInput("a replay needs at least two requests at different times", f"{field}.payloads",
                           source=str(recorded.source))
    first = starts[0]
    return ReplayShape(tuple((t - first) / speed for t in starts), speed)
