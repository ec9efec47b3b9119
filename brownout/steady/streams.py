"""LLM streams: an OpenAI-compatible streaming request probed continuously, measured, judged.

Definitions as in vLLM's serving benchmark client, timed on the client:

* TTFT: from sending the request to the first chunk with non-empty content (a role-only
  first delta does not count);
* ITL: the gaps between consecutive content chunks (pooled over a window's streams);
* E2EL: from sending to ``[DONE]`` (or to the end of a stream that never sent it);
* goodput (DistServe): the share of streams that are intact and meet every TTFT/ITL bound.

Integrity: status 200 and ``text/event-stream``, ``[DONE]`` received and nothing
after it, exactly one non-null ``finish_reason`` per choice, no error event, every chunk
valid JSON with the same ``id``, token text free of U+FFFD and control characters, and
(when ``expect`` is set) the text matching it. A truncated or broken stream is never
counted as good, however fast it was.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from brownout.experiment.steady import StreamSla
from brownout.steady.probing import probe_until
from brownout.steady.quality import quantile
from faults.sse import EventSplitter, SseEvent, parse

_BAD_TEXT = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_ERROR_BODY = 4096


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """An event parsed by ``faults.sse`` and the time the read that completed it arrived:
    what TTFT and inter-token latency are measured from."""

    at: float
    event: SseEvent

    @property
    def data(self) -> str:
        return self.event.data or ""

    @property
    def name(self) -> str:
        return self.event.event or "message"


class TimedEvents:
    """``faults.sse``'s splitter (the one SSE parser), stamping each event with its read's time.

    Events without ``data`` (comments, keep-alives, blank lines) are not dispatched, as the
    WHATWG rules say. At the end of the stream a trailing CR still ends its line; an event
    never closed by a blank line is dropped.
    """

    def __init__(self) -> None:
        self._splitter = EventSplitter()

    def feed(self, chunk: bytes, at: float) -> list[TimedEvent]:
        return self._stamp(self._splitter.feed(chunk), at)

    def close(self, at: float) -> list[TimedEvent]:
        tail = self._splitter.tail()
        return self._stamp(EventSplitter().feed(tail + b"\n"), at) if tail.endswith(b"\r") else []

    @staticmethod
    def _stamp(raws: list[bytes], at: float) -> list[TimedEvent]:
        events = (parse(raw) for raw in raws)
        return [TimedEvent(at, e) for e in events if e.data is not None]


@dataclass(frozen=True, slots=True)
class StreamSample:
    """One probed stream: when it was sent (run seconds), its timings and what was wrong."""

    at: float
    status: int
    ttft_s: float | None
    itl_s: tuple[float, ...]
    e2el_s: float | None
    tokens: int                 # content chunks (one chunk may bundle several tokens)
    text: str
    done: bool
    finish_reasons: tuple[str, ...]
    problems: tuple[str, ...]   # integrity failures; empty: intact

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def itl_p99_s(self) -> float | None:
        return quantile(sorted(self.itl_s), 0.99) if self.itl_s else None

    def good(self, sla: StreamSla) -> bool:
        """Intact and within the TTFT and ITL bounds the SLA sets (DistServe goodput)."""
        if not self.intact or self.ttft_s is None:
            return False
        if sla.ttft_p99_ms is not None and self.ttft_s * 1000 > sla.ttft_p99_ms:
            return False
        itl = self.itl_p99_s
        return sla.itl_p99_ms is None or itl is None or itl * 1000 <= sla.itl_p99_ms

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "status": self.status, "ttft_s": self.ttft_s, "e2el_s": self.e2el_s,
                "tokens": self.tokens, "done": self.done, "finish_reasons": list(self.finish_reasons),
                "problems": list(self.problems)}


def analyse(events: Sequence[TimedEvent], *, at: float, sent: float, ended: float, status: int = 200,
            content_type: str = "text/event-stream", error: str | None = None,
            expect: re.Pattern[str] | None = None) -> StreamSample:
    """Judge a stream from its timestamped events (``sent``/``ended`` on the events' clock)."""
    problems: list[str] = []
    if error is not None:
        problems.append(f"transport error: {error}")
    if status not in (0, 200):  # 0: no answer at all (the transport error says why)
        problems.append(f"status {status}")
    elif not content_type.startswith("text/event-stream"):
        problems.append(f"not an event stream ({content_type or 'no content-type'})")
    content_at: list[float] = []
    text: list[str] = []
    reasons: dict[int, list[str]] = {}
    ids: set[str] = set()
    done_at: float | None = None
    after_done = malformed = bad_text = 0
    for ev in events:
        if done_at is not None:
            after_done += 1
            continue
        if ev.data.strip() == "[DONE]":
            done_at = ev.at
            continue
        if ev.name == "error":
            problems.append(f"error event: {ev.data[:120]}")
            continue
        try:
            chunk = json.loads(ev.data)
        except ValueError:
            malformed += 1
            continue
        if not isinstance(chunk, dict):
            malformed += 1
            continue
        if "error" in chunk:
            problems.append(f"error event: {json.dumps(chunk['error'])[:120]}")
            continue
        if isinstance(chunk.get("id"), str):
            ids.add(chunk["id"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                malformed += 1
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            piece = delta.get("content", choice.get("text"))
            if piece is not None and not isinstance(piece, str):
                bad_text += 1
            elif piece:
                bad_text += bool(_BAD_TEXT.search(piece))
                text.append(piece)
                content_at.append(ev.at)
            if choice.get("finish_reason") is not None:
                reasons.setdefault(int(choice.get("index") or 0), []).append(str(choice["finish_reason"]))
    joined = "".join(text)
    if status == 200:  # a stream was started: judge it (a refused one is already a problem)
        problems += _integrity(done_at is not None, after_done, malformed, bad_text, reasons, ids, content_at)
    if expect is not None and content_at and not expect.search(joined):
        problems.append(f"text does not match {expect.pattern!r}")
    gaps = tuple(b - a for a, b in itertools.pairwise(content_at))
    finished = done_at if done_at is not None else ended
    return StreamSample(
        at=at, status=status, ttft_s=content_at[0] - sent if content_at else None, itl_s=gaps,
        e2el_s=finished - sent if status == 200 else None, tokens=len(content_at), text=joined,
        done=done_at is not None, finish_reasons=tuple(r for rs in reasons.values() for r in rs),
        problems=tuple(dict.fromkeys(problems)),
    )


def _integrity(done: bool, after_done: int, malformed: int, bad_text: int, reasons: dict[int, list[str]],
               ids: set[str], content_at: list[float]) -> list[str]:
    out = []
    if not content_at:
        out.append("no tokens")
    if not done:
        out.append("no [DONE]")
    if after_done:
        out.append(f"{after_done} event(s) after [DONE]")
    if malformed:
        out.append(f"{malformed} malformed chunk(s)")
    if bad_text:
        out.append(f"{bad_text} chunk(s) with invalid token text")
    if not reasons:
        out.append("no finish_reason")
    elif any(len(rs) != 1 for rs in reasons.values()):
        out.append(f"{max(len(rs) for rs in reasons.values())} finish_reasons for one choice")
    if len(ids) > 1:
        out.append(f"chunk ids differ ({len(ids)} ids in one stream)")
    return out


# -- per-window statistics ---------------------------------------------------------------

@dataclass(frozen=True)
class StreamStats:
    streams: int = 0
    integrity_failures: int = 0
    problems: tuple[tuple[str, int], ...] = ()
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_p99_ms: float | None = None
    e2el_p99_ms: float | None = None
    goodput: float | None = None
    tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"streams": self.streams, "integrity_failures": self.integrity_failures,
                "problems": dict(self.problems), "ttft_p50_ms": self.ttft_p50_ms, "ttft_p99_ms": self.ttft_p99_ms,
                "itl_p99_ms": self.itl_p99_ms, "e2el_p99_ms": self.e2el_p99_ms, "goodput": self.goodput,
                "tokens": self.tokens}


def _ms(values: Sequence[float], q: float) -> float | None:
    return round(quantile(sorted(values), q) * 1000, 3) if values else None


def stream_stats(samples: Sequence[StreamSample], sla: StreamSla) -> StreamStats:
    if not samples:
        return StreamStats()
    ttfts = [s.ttft_s for s in samples if s.ttft_s is not None]
    itls = [g for s in samples for g in s.itl_s]
    e2els = [s.e2el_s for s in samples if s.e2el_s is not None]
    problems = Counter(p for s in samples for p in s.problems)
    return StreamStats(
        streams=len(samples), integrity_failures=sum(not s.intact for s in samples),
        problems=tuple(problems.most_common()), ttft_p50_ms=_ms(ttfts, 0.5), ttft_p99_ms=_ms(ttfts, 0.99),
        itl_p99_ms=_ms(itls, 0.99), e2el_p99_ms=_ms(e2els, 0.99),
        goodput=sum(s.good(sla) for s in samples) / len(samples), tokens=sum(s.tokens for s in samples),
    )


# -- probing through the proxy -----------------------------------------------------------

@dataclass
class StreamProber:
    """Sends the streaming request every ``interval`` seconds until stopped; reads it chunk by chunk.

    ``clock`` returns run seconds (``StreamSample.at``); timings use ``time.perf_counter``.
    """

    session: aiohttp.ClientSession
    url: str
    body: dict[str, Any]
    interval: float
    clock: Callable[[], float]
    on_result: Callable[[StreamSample], Awaitable[None] | object]
    timeout: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)
    expect: re.Pattern[str] | None = None

    async def probe_once(self) -> StreamSample:
        at = self.clock()
        parser, events = TimedEvents(), []
        status, content_type, error = 0, "", None
        sent = time.perf_counter()
        try:
            async with self.session.post(self.url, json=self.body,
                                         headers={"Accept": "text/event-stream", **self.headers},
                                         timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                status, content_type = response.status, response.headers.get("Content-Type", "")
                if status != 200:
                    await response.content.read(_MAX_ERROR_BODY)
                else:
                    async for chunk in response.content.iter_any():
                        events += parser.feed(chunk, time.perf_counter())
                    events += parser.close(time.perf_counter())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = exc.__class__.__name__
        return analyse(events, at=at, sent=sent, ended=time.perf_counter(), status=status,
                       content_type=content_type, error=error, expect=self.expect)

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until ``stop`` is set (bounded by the caller's run time)."""
        await probe_until(stop, self.probe_once, self.on_result, self.interval)
