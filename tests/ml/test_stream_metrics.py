"""SSE framing (faults.sse, timestamped), TTFT/ITL/E2EL from timestamped chunks, stream integrity, goodput, stream verdicts."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from brownout.experiment.steady import SteadyState, Streams, StreamSla
from brownout.steady.checker import SteadyStateChecker
from brownout.steady.streams import StreamSample, TimedEvent, TimedEvents, analyse, stream_stats
from faults import sse


def chunk(content: str | None = None, finish: str | None = None, cid: str = "c1", role: bool = False) -> str:
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
    if content is not None:
        delta["content"] = content
    return json.dumps({"id": cid, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def ev(at: float, data: str, name: str | None = None) -> TimedEvent:
    return TimedEvent(at, sse.parse(sse.format_event(data, event=name)))


def stream(times_and_data: list[tuple[float, str]]) -> list[TimedEvent]:
    return [ev(t, d) for t, d in times_and_data]


def seen(events: list[TimedEvent]) -> list[tuple[float, str, str]]:
    return [(e.at, e.data, e.name) for e in events]


def healthy(sent: float = 10.0) -> list[TimedEvent]:
    # role chunk at +5 ms (ignored for TTFT), tokens at +100, +110, +130, +160 ms, then finish and [DONE]
    return stream([(sent + 0.005, chunk(role=True)), (sent + 0.100, chunk("Hello")), (sent + 0.110, chunk(" big")),
                   (sent + 0.130, chunk(" wide")), (sent + 0.160, chunk(" world")),
                   (sent + 0.161, chunk(finish="stop")), (sent + 0.162, "[DONE]")])


# -- SSE framing: faults.sse's splitter and parser, stamped per read ------------------------

def test_parser_buffers_by_line_across_reads_and_line_endings() -> None:
    p = TimedEvents()
    assert p.feed(b"data: {\"a\"", 1.0) == []
    assert p.feed(b": 1}\n", 1.1) == []          # still no blank line: the event is not over
    first = p.feed(b"\n: keep-alive\r\n\r\ndata:x\r", 1.2)  # a comment block is not an event
    assert seen(first) == [(1.2, '{"a": 1}', "message")]  # stamped with the read that completed it
    # The CR at the end of the last read was half a CRLF: one line end, not a blank line.
    assert seen(p.feed(b"\ndata: y\r\rdata: z\n\n", 1.3)) == [(1.3, "x\ny", "message"), (1.3, "z", "message")]


def test_parser_fields_and_several_events_in_one_read() -> None:
    p = TimedEvents()
    events = p.feed(b"event: error\ndata: {\"error\": 1}\nid: 7\nretry: 10\n\ndata: [DONE]\n\n", 2.0)
    assert seen(events) == [(2.0, '{"error": 1}', "error"), (2.0, "[DONE]", "message")]
    assert p.feed(b"data: cut", 3.0) == [] and p.close(3.1) == []  # no blank line: never dispatched


def test_parser_one_space_after_the_colon_and_events_without_data() -> None:
    p = TimedEvents()
    events = p.feed(b"data:  two spaces\n\nevent: ping\n\n\n\ndata:\n\n", 4.0)
    assert seen(events) == [(4.0, " two spaces", "message"), (4.0, "", "message")]  # an event with no data is not one


def test_a_cr_ending_the_stream_still_ends_its_line() -> None:
    p = TimedEvents()
    assert p.feed(b"data: last\r\r", 5.0) == []  # the final CR could have been half a CRLF
    assert seen(p.close(5.5)) == [(5.5, "last", "message")]
    q = TimedEvents()
    assert q.feed(b"data: open\r", 6.0) == [] and q.close(6.5) == []  # its line ended, its event did not


# -- timings ------------------------------------------------------------------------

def test_ttft_itl_e2el_from_timestamped_chunks() -> None:
    s = analyse(healthy(), at=4.0, sent=10.0, ended=10.2)
    assert s.intact and s.done and s.finish_reasons == ("stop",)
    assert s.ttft_s == pytest.approx(0.100)          # the role-only first chunk does not count
    assert s.itl_s == pytest.approx((0.010, 0.020, 0.030))
    assert s.e2el_s == pytest.approx(0.162)          # until [DONE], not until the socket closed
    assert (s.tokens, s.text, s.at) == (4, "Hello big wide world", 4.0)
    assert s.itl_p99_s == pytest.approx(0.0298, abs=1e-4)


# -- integrity -------------------------------------------------------------------------

def problems(events: list[TimedEvent], **kw: Any) -> tuple[str, ...]:
    return analyse(events, at=0.0, sent=10.0, ended=11.0, **kw).problems


def test_cut_stream_without_done_is_a_failure() -> None:
    cut = healthy()[:3]
    assert problems(cut) == ("no [DONE]", "no finish_reason")
    no_reason = [e for e in healthy() if "stop" not in e.data]
    assert problems(no_reason) == ("no finish_reason",)


def test_other_integrity_failures() -> None:
    events = healthy()
    twice = events[:-1] + [ev(10.2, chunk(finish="stop")), events[-1]]
    assert problems(twice) == ("2 finish_reasons for one choice",)
    error = events[:3] + [ev(10.2, json.dumps({"error": {"message": "overloaded"}}))] + events[3:]
    assert problems(error) == ('error event: {"message": "overloaded"}',)
    crossed = events[:2] + [ev(10.11, chunk(" big", cid="other"))] + events[3:]
    assert problems(crossed) == ("chunk ids differ (2 ids in one stream)",)
    after = events + [ev(10.3, chunk("late"))]
    assert problems(after) == ("1 event(s) after [DONE]",)
    garbled = events[:2] + [ev(10.11, chunk(" b\ufffdg")), ev(10.12, "{not json")] + events[3:]
    assert problems(garbled) == ("1 malformed chunk(s)", "1 chunk(s) with invalid token text")
    assert problems(events, expect=re.compile(r"world$")) == ()
    assert problems(events, expect=re.compile(r"^Goodbye")) == ("text does not match '^Goodbye'",)


def test_refused_and_broken_streams() -> None:
    assert problems([], status=503, content_type="application/json") == ("status 503",)
    assert problems([], status=200, content_type="application/json")[0] == "not an event stream (application/json)"
    timed_out = problems(healthy()[:3], error="TimeoutError")
    assert timed_out[0] == "transport error: TimeoutError" and "no [DONE]" in timed_out
    refused = analyse([], at=0.0, sent=1.0, ended=1.0, status=0, error="ClientConnectorError")
    assert refused.problems == ("transport error: ClientConnectorError",) and refused.e2el_s is None


# -- per window --------------------------------------------------------------------------

def sample(ttft_ms: float, itl_ms: float, *, problems: tuple[str, ...] = (), at: float = 0.0) -> StreamSample:
    return StreamSample(at=at, status=200, ttft_s=ttft_ms / 1000, itl_s=(itl_ms / 1000,) * 5, e2el_s=0.5,
                        tokens=6, text="x", done=not problems, finish_reasons=("stop",), problems=problems)


def test_goodput_counts_intact_streams_within_ttft_and_itl() -> None:
    sla = StreamSla(ttft_p99_ms=200, itl_p99_ms=50)
    samples = [sample(100, 10), sample(300, 10), sample(100, 80), sample(100, 10, problems=("no [DONE]",))]
    stats = stream_stats(samples, sla)
    assert stats.goodput == 0.25 and stats.integrity_failures == 1 and stats.streams == 4
    assert stats.ttft_p50_ms == pytest.approx(100) and stats.itl_p99_ms == pytest.approx(80)
    assert stats.problems == (("no [DONE]", 1),)


def test_checker_judges_streams_per_window() -> None:
    steady = SteadyState(window=1.0, streams=Streams(sla=StreamSla(ttft_p99_ms=200, min_goodput=0.9)))
    checker = SteadyStateChecker(steady)
    for i in range(4):
        checker.feed_stream(sample(50, 5, at=i / 4))
        checker.feed_stream(sample(450 if i else 50, 5, at=1 + i / 4, problems=("no [DONE]",) if i == 3 else ()))
    ok = checker.close_window(0, phase="baseline")
    bad = checker.close_window(1, phase="method", active_faults=["stream@llm"])
    assert ok.ok and ok.streams is not None and ok.streams.streams == 4
    failed = {v.sli: v for v in bad.verdicts if not v.ok}
    assert set(failed) == {"ttft_p99_ms", "goodput", "stream_integrity_failures"}
    assert failed["ttft_p99_ms"].value == pytest.approx(450) and failed["goodput"].value == 0.25
    assert failed["stream_integrity_failures"].bound == 0 and failed["stream_integrity_failures"].value == 1
    assert "stream@llm" in failed["goodput"].message()
    assert bad.as_dict()["streams"]["integrity_failures"] == 1
    [method] = [p for p in checker.phase_results() if p.phase == "method"]
    assert method.streams is not None and method.streams.streams == 4


def test_streams_model_forces_stream_true_and_checks_expect() -> None:
    assert Streams().body["stream"] is True
    assert Streams(body={"messages": [{"role": "user", "content": "hi"}]}).body["stream"] is True
    with pytest.raises(ValueError, match="stream: true"):
        Streams(body={"stream": False})
    with pytest.raises(ValueError, match="not a regular expression"):
        Streams(expect="(")
