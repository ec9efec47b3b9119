"""SSE framing: events reassembled across arbitrary chunk boundaries, parsed, re-framed."""

from __future__ import annotations

import pytest

from faults.sse import EventSplitter, format_event, parse

STREAM = (b': keep-alive\n\n'
          b'data: {"a": 1}\n\n'
          b'event: error\r\nid: 7\r\ndata: line one\r\ndata:line two\r\n\r\n'
          b'data: x\r\rdata: [DONE]\n\n')
EVENTS = [b': keep-alive\n\n', b'data: {"a": 1}\n\n', b'event: error\r\nid: 7\r\ndata: line one\r\ndata:line two\r\n\r\n',
          b'data: x\r\r', b'data: [DONE]\n\n']


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16, 1000])
def test_split_across_any_chunk_boundary(size: int) -> None:
    splitter = EventSplitter()
    events = []
    for i in range(0, len(STREAM), size):
        events += splitter.feed(STREAM[i:i + size])
    assert events == EVENTS
    assert splitter.tail() == b""
    assert b"".join(events) == STREAM  # nothing lost, nothing added


def test_cr_at_a_chunk_end_waits_for_a_possible_lf() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b"data: a\r\n\r") == []
    assert splitter.feed(b"\n") == [b"data: a\r\n\r\n"]


def test_incomplete_event_is_the_tail() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b'data: a\n\ndata: partial') == [b'data: a\n\n']
    assert splitter.tail() == b'data: partial'


def test_parse_fields() -> None:
    comment = parse(EVENTS[0])
    assert comment.data is None
    event = parse(EVENTS[2])
    assert (event.event, event.id, event.data) == ("error", "7", "line one\nline two")
    assert event.eol == b"\r\n"
    assert parse(EVENTS[1]).json() == {"a": 1}
    done = parse(EVENTS[4])
    assert done.is_done and done.json() is None
    assert parse(b"data\n\n").data == ""


def test_format_event_round_trips() -> None:
    raw = format_event("one\ntwo", event="error", event_id="3")
    assert raw == b"event: error\nid: 3\ndata: one\ndata: two\n\n"
    event = parse(raw)
    assert (event.event, event.id, event.data) == ("error", "3", "one\ntwo")
    assert format_event("x", eol=b"\r\n") == b"data: x\r\n\r\n"


def test_a_long_event_in_many_small_reads() -> None:
    big = b"data: " + b"y" * 200_000 + b"\r\n\r\n"
    splitter = EventSplitter()
    events = []
    for i in range(0, len(big), 999):
        events += splitter.feed(big[i:i + 999])
    assert events == [big] and parse(big).data == "y" * 200_000
