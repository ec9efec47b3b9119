"""The proxy ↔ writer frames: exchanges in marshal, control messages in pickle, any split of the stream."""

from __future__ import annotations

import struct

import pytest

from proxy.recording.frames import HEADER, MAX_FRAME, Reader, RecordingStats, frame

ITEM = (("rec-1",), "POST", "/predict?v=2", [(b"Host", b"m:80"), (b"X-Id", bytearray(b"7"))], [b"{\"a\": 1}"],
        1_714_000_000.5, ("f1",), None, [(b"Content-Type", b"application/json")], [b"{}", b"\n"], 12.5)


def test_exchanges_go_as_marshal_and_control_messages_as_pickle() -> None:
    items = frame(("items", [ITEM]))
    stats = frame(("stats", {"rec-1": RecordingStats(lines=3)}, 0.25, []))
    assert items[HEADER.size:HEADER.size + 1] == b"m"
    assert stats[HEADER.size:HEADER.size + 1] == b"p"
    messages = list(Reader().feed(items + stats))
    assert messages[0][0] == "items" and messages[0][1][0][7] is None
    assert messages[0][1][0][3][1] == (b"X-Id", b"7")  # a bytearray header value arrives as bytes
    assert messages[1] == ("stats", {"rec-1": RecordingStats(lines=3)}, 0.25, [])


def test_a_stream_fed_one_byte_at_a_time_gives_the_same_messages() -> None:
    stream = frame(("items", [ITEM, ITEM])) + frame(("flush", 4))
    reader = Reader()
    got = [message for i in range(len(stream)) for message in reader.feed(stream[i:i + 1])]
    assert [m[0] for m in got] == ["items", "flush"] and got[1] == ("flush", 4)


def test_a_frame_over_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="frame of"):
        list(Reader().feed(struct.pack("!I", MAX_FRAME + 1) + b"m"))
