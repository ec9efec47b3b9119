"""The log chain: structlog's output, made for less, and written once per event-loop turn."""

from __future__ import annotations

import asyncio
import io
from structlog.processors import JSONRenderer, TimeStamper

from proxy.logs import LineWriter, UtcTimestamp, render_json


class _Stream(io.StringIO):
    """A text stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_timestamps_are_structlogs_iso_utc() -> None:
    stamp = UtcTimestamp(clock=iter([1_764_900_000.25, 1_764_900_000.5, 1_764_900_001.0, 1_764_986_400.000123]).__next__)
    assert [stamp(None, "info", {})["timestamp"] for _ in range(4)] == [
        "2025-12-05T02:00:00.250000Z", "2025-12-05T02:00:00.500000Z", "2025-12-05T02:00:01Z",
        "2025-12-06T02:00:00.000123Z"]
    ours, theirs = UtcTimestamp()(None, "info", {})["timestamp"], TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]
    assert len(ours) == len(theirs) == 27 and ours[:19] <= theirs[:19]  # the same form, the same clock


def test_json_is_structlogs() -> None:
    class Custom:
        def __structlog__(self) -> str:
            return "custom"

    event = {"event": "fault_injected", "at_s": 1.2e-05, "details": {"delay_ms": 0.0, "rejected": "tokens"},
             "name": "é", "thing": object(), "custom": Custom(), "none": None}
    assert render_json(None, "info", dict(event)) == JSONRenderer()(None, "info", dict(event))


def test_lines_of_one_loop_turn_go_out_in_one_write_errors_at_once() -> None:
    stream = _Stream()
    writer = LineWriter(stream)

    async def turn() -> list[str]:
        writer.info("a")
        writer.info("b")
        assert stream.writes == []  # not yet: at the end of this turn
        writer.error("e")  # an error goes at once, with what came before it
        written = list(stream.writes)
        writer.info("c")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return written

    assert asyncio.run(turn()) == ["a\nb\ne\n"]
    assert stream.writes == ["a\nb\ne\n", "c\n"]
    writer.info("no loop")  # with no loop running: at once
    assert stream.writes[-1] == "no loop\n"
    assert stream.getvalue().splitlines() == ["a", "b", "e", "c", "no loop"]


def test_a_line_left_when_the_loop_stopped_is_written_once_by_the_next_flush() -> None:
    stream = _Stream()
    writer = LineWriter(stream)
    loop = asyncio.new_event_loop()

    def log_and_stop() -> None:
        writer.info("last")
        loop.stop()  # the turn ends before the flush it scheduled can run

    loop.call_soon(log_and_stop)
    try:
        loop.run_forever()
    finally:
        loop.close()
    writer.flush()  # what atexit does
    writer.flush()
    assert stream.getvalue() == "last\n"
