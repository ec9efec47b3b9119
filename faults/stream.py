"""stream: LLM streaming faults on Server-Sent Events — TTFT, pacing, stalls, bursts, cuts, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from faults.base import BodyEdit, Fault, require
from faults.distributions import DistributionName, check_shape, draw_ms
from faults.exchange import Exchange
from faults.sse import DONE, EventSplitter, SseEvent, dumps, format_event, parse

# Improbable tokens for English text (Thai, CJK, Cyrillic), as the Aug 2025 TPU bug produced.
_GLITCH = ("ข้อ", "的", "ゼ", "Ж", "ฆ่า", "漢")


def is_event_stream(ex: Exchange) -> bool:
    """A successful, uncompressed SSE response (a compressed one cannot be re-framed)."""
    headers = ex.response_headers
    ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
    encoded = headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
    return ctype == "text/event-stream" and not encoded and ex.status is not None and 200 <= ex.status < 300


@dataclass(frozen=True)
class StreamFault(Fault):
    """Fault an SSE token stream: delay the first event, pace, stall, burst, cut, drop finish_reason, error, corrupt.

    Why realistic: TTFT/TPOT/ITL SLOs exist because prefill/decode interference makes real
    streams slow and jittery (DistServe, vLLM #6531); streams get dropped with a clean EOF
    and no ``[DONE]`` (ninfer #137, mastra #22097); Triton documents in-band errors after
    the 200 (and many clients ignore them); Anthropic's Aug–Sep 2025 bugs and OpenAI's Feb
    2024 kernel bug emitted wrong tokens. Only ``text/event-stream``
    responses are touched; others pass through. Events are counted as ``data`` events,
    not counting ``[DONE]`` or comment keep-alives.
    ``first_event_delay_ms``: hold the first event (adds to TTFT). ``event_interval_ms``
    (+ uniform ``interval_jitter_ms``): a pause before every later write (pacing: TPOT/ITL).
    ``stall_after_events`` + ``stall_ms``: a long pause after that many events — a vLLM
    preemption: the scheduler evicts the request's KV cache for others and recomputes it
    later, so a stream stops dead mid-answer, then resumes. ``stall_every_events``: stall
    again every that many events after the first stall (repeated preemption under memory
    pressure). ``preempt_probability``: the share of streams that stall at all (drawn once
    per stream; default 1). The pause is drawn per stall as ``latency`` draws a delay:
    ``stall_distribution`` (``fixed``: stall_ms ± uniform ``stall_jitter_ms``; ``uniform``,
    ``normal`` with sd stall_jitter_ms, ``lognormal`` with median stall_ms and shape
    ``stall_sigma``, ``pareto`` with scale stall_ms and shape ``stall_alpha``), clipped to
    [0, ``stall_max_ms``]. Each stall is reported (``stalls``, ``stalled_ms``,
    ``last_stall_after_events``).
    ``coalesce``: send N events per write (bursty delivery). ``cut_after_events``: end the
    stream cleanly after that many events; ``keep_done`` says whether ``data: [DONE]``
    still closes it (after a cut or an error event). ``drop_finish_reason``: every
    non-null ``choices[].finish_reason`` becomes null. ``error_after_events``: after that
    many events, send an in-band error (``{"error": {"message": error_message, ...}}``,
    as ``data:`` or, with ``error_style: event``, as ``event: error``) and end the stream.
    ``corrupt_tokens``: the share of content deltas (``delta.content``, ``text``,
    ``text_output``) replaced by improbable tokens (digits are flipped instead), chosen with
    the seeded rng. Events nobody changes pass byte for byte: a stream that is only delayed,
    paced, stalled or coalesced keeps upstream's Content-Length; one whose events change is
    sent chunked (close-delimited to HTTP/1.0 clients), event by event, never buffered.
    """

    kind = "stream"

    first_event_delay_ms: float = 0.0
    event_interval_ms: float = 0.0
    interval_jitter_ms: float = 0.0
    stall_after_events: int | None = None
    stall_ms: float = 0.0
    stall_every_events: int | None = None
    stall_jitter_ms: float = 0.0
    stall_distribution: DistributionName = "fixed"
    stall_sigma: float = 0.5
    stall_alpha: float = 2.0
    stall_max_ms: float = 60_000.0
    preempt_probability: float = 1.0
    coalesce: int = 1
    cut_after_events: int | None = None
    keep_done: bool = False
    drop_finish_reason: bool = False
    error_after_events: int | None = None
    error_message: str = "upstream inference error"
    error_style: Literal["data", "event"] = "data"
    corrupt_tokens: float = 0.0

    def validate(self) -> None:
        for name in ("first_event_delay_ms", "event_interval_ms", "interval_jitter_ms", "stall_ms"):
            require(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        for name in ("stall_after_events", "cut_after_events", "error_after_events"):
            value = getattr(self, name)
            require(value is None or value >= 0, name, f"must be >= 0, got {value}")
        require((self.stall_after_events is None) == (self.stall_ms == 0), "stall_ms",
                "give stall_after_events and stall_ms > 0 together")
        check_shape(("stall_ms", self.stall_ms), ("stall_jitter_ms", self.stall_jitter_ms), ("stall_sigma", self.stall_sigma),
                    ("stall_alpha", self.stall_alpha), ("stall_max_ms", self.stall_max_ms))
        require(self.stall_every_events is None or self.stall_every_events >= 1, "stall_every_events",
                f"must be >= 1, got {self.stall_every_events}")
        require(0.0 <= self.preempt_probability <= 1.0, "preempt_probability",
                f"must be in [0, 1], got {self.preempt_probability}")
        for name in ("stall_every_events", "preempt_probability"):
            require(self.stall_after_events is not None or getattr(self, name) == _DEFAULTS[name], name,
                    "applies to stalls: give stall_after_events and stall_ms too")
        require(self.coalesce >= 1, "coalesce", f"must be >= 1, got {self.coalesce}")
        require(0.0 <= self.corrupt_tokens <= 1.0, "corrupt_tokens", f"must be in [0, 1], got {self.corrupt_tokens}")
        effects = (self.first_event_delay_ms, self.event_interval_ms, self.stall_ms, self.coalesce > 1,
                   self.cut_after_events is not None, self.drop_finish_reason, self.error_after_events is not None,
                   self.corrupt_tokens)
        require(any(effects), "first_event_delay_ms", "give at least one stream effect")

    def draw_stall_ms(self, ex: Exchange) -> float:
        return draw_ms(ex.rng, self.stall_distribution, self.stall_ms, self.stall_jitter_ms, sigma=self.stall_sigma,
                       alpha=self.stall_alpha, max_ms=self.stall_max_ms)

    def preempts(self, ex: Exchange) -> bool:
        """Whether this stream stalls at all (one draw per stream, and none when every stream does)."""
        if self.stall_after_events is None:
            return False
        return self.preempt_probability >= 1.0 or ex.rng.random() < self.preempt_probability

    @property
    def changes_events(self) -> bool:
        """Whether the bytes change (else only their timing does)."""
        return (self.cut_after_events is not None or self.error_after_events is not None
                or self.drop_finish_reason or self.corrupt_tokens > 0)

    def response_edit(self, ex: Exchange) -> BodyEdit:
        return BodyEdit.STREAM if self.changes_events and is_event_stream(ex) else BodyEdit.NONE

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return self._run(ex, body) if is_event_stream(ex) else body

    async def _run(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        pacer = _Pacer(self, ex)
        splitter = EventSplitter()
        counted = changed = 0
        if self._ends_after(0):
            self._report_end(ex, 0)
            async for out in pacer.send(self._ending(0), counts=False):
                yield out
            async for out in pacer.flush():
                yield out
            return
        async for chunk in body:
            for raw in splitter.feed(chunk):
                event = parse(raw)
                counts = event.data is not None and not event.is_done
                mutated = self._mutate(event, ex)
                if mutated is not event.raw:
                    changed += 1
                    ex.report(events_changed=changed)
                async for out in pacer.send(mutated, counts=counts):
                    yield out
                counted += counts
                if counts and self._ends_after(counted):
                    self._report_end(ex, counted)
                    async for out in pacer.send(self._ending(counted), counts=False):
                        yield out
                    async for out in pacer.flush():
                        yield out
                    return
        tail = splitter.tail()
        async for out in pacer.send(tail, counts=False):
            yield out
        async for out in pacer.flush():
            yield out

    def _ends_after(self, counted: int) -> bool:
        return counted in (self.cut_after_events, self.error_after_events)

    def _report_end(self, ex: Exchange, counted: int) -> None:
        if counted == self.error_after_events:
            ex.report(error_after_events=counted)
        else:
            ex.report(cut_after_events=counted)

    def _ending(self, counted: int) -> bytes:
        """What closes a cut or errored stream: the error event and/or ``[DONE]``."""
        out = b""
        if counted == self.error_after_events:
            error = dumps({"error": {"message": self.error_message, "type": "server_error", "code": 500}})
            out += format_event(error, event="error" if self.error_style == "event" else None)
        if self.keep_done:
            out += format_event(DONE)
        return out

    def _mutate(self, event: SseEvent, ex: Exchange) -> bytes:
        if not (self.drop_finish_reason or self.corrupt_tokens):
            return event.raw
        doc = event.json()
        if not isinstance(doc, dict):
            return event.raw
        changed = 0
        for choice in doc.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if self.drop_finish_reason and choice.get("finish_reason") is not None:
                choice["finish_reason"] = None
                changed += 1
            if self.corrupt_tokens:
                delta = choice.get("delta")
                changed += self._corrupt(delta, "content", ex) if isinstance(delta, dict) else 0
                changed += self._corrupt(choice, "text", ex)
        if self.corrupt_tokens:
            changed += self._corrupt(doc, "text_output", ex)
        if not changed:
            return event.raw
        return format_event(dumps(doc), event=event.event, event_id=event.id, eol=event.eol)

    def _corrupt(self, holder: dict[str, Any], key: str, ex: Exchange) -> int:
        text = holder.get(key)
        if not isinstance(text, str) or not text.strip() or ex.rng.random() >= self.corrupt_tokens:
            return 0
        if any(c.isdigit() for c in text):
            holder[key] = "".join(str((int(c) + ex.rng.randrange(1, 10)) % 10) if c.isdigit() else c for c in text)
        else:
            holder[key] = ex.rng.choice(_GLITCH)
        return 1


_DEFAULTS = {"stall_every_events": None, "preempt_probability": 1.0}


class _Pacer:
    """Timing of writes: first-event delay, interval (+ jitter), stalls, ``coalesce`` events per write."""

    def __init__(self, fault: StreamFault, ex: Exchange) -> None:
        self.fault, self.ex = fault, ex
        self.pending: list[bytes] = []
        self.pending_events = 0
        self.writes = 0
        self.events = 0
        self.next_stall = fault.stall_after_events if fault.preempts(ex) else None  # after this many events
        self.stalls = 0
        self.stalled_ms = 0.0
        self.paused_ms = 0.0

    async def send(self, raw: bytes, *, counts: bool) -> AsyncIterator[bytes]:
        if not raw:
            return
        self.pending.append(raw)
        self.pending_events += counts
        if len(self.pending) >= self.fault.coalesce:
            async for out in self.flush():
                yield out

    async def flush(self) -> AsyncIterator[bytes]:
        if not self.pending:
            return
        f = self.fault
        if self.writes == 0:
            await self._pause(f.first_event_delay_ms)
        else:
            jitter = self.ex.rng.uniform(0.0, f.interval_jitter_ms) if f.interval_jitter_ms else 0.0
            await self._pause(f.event_interval_ms + jitter)
        while self.next_stall is not None and self.events >= self.next_stall:
            await self._stall(self.next_stall)
            self.next_stall = self.next_stall + f.stall_every_events if f.stall_every_events else None
        out, self.pending = b"".join(self.pending), []
        self.writes += 1
        self.events += self.pending_events
        self.pending_events = 0
        yield out

    async def _stall(self, after_events: int) -> None:
        ms = self.fault.draw_stall_ms(self.ex)
        self.stalls += 1
        self.stalled_ms += ms
        self.ex.report(stalls=self.stalls, stalled_ms=round(self.stalled_ms, 3), last_stall_after_events=after_events)
        await self._pause(ms)

    async def _pause(self, ms: float) -> None:
        if ms > 0:
            self.paused_ms += ms
            self.ex.report(paused_ms=round(self.paused_ms, 3))
            await self.ex.sleep(ms / 1000.0)

