"""proxy/flow.py on its own: no sockets, a fake transport that counts pause and resume."""

from __future__ import annotations

import asyncio

import pytest

from proxy.flow import HIGH_WATER, LOW_WATER, BodyStream, WriteFlow, wake


class FakeTransport:
    """What BodyStream needs of a transport: pause_reading and resume_reading."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


def stream() -> tuple[BodyStream, FakeTransport]:
    transport = FakeTransport()
    return BodyStream(transport.pause, transport.resume), transport


async def test_pieces_arrive_as_fed_and_end_with_empty_bytes() -> None:
    body, _ = stream()
    body.feed(b"ab")
    body.feed(b"c")
    body.finish()
    assert body.complete and not body.finished  # all arrived, not all read
    assert [await body.read(), await body.read(), await body.read(), await body.read()] == [b"ab", b"c", b"", b""]
    assert body.finished


async def test_a_reader_waits_for_the_next_piece() -> None:
    body, _ = stream()
    reader = asyncio.ensure_future(body.read())
    await asyncio.sleep(0)
    assert not reader.done()
    body.feed(b"late")
    assert await asyncio.wait_for(reader, 1) == b"late"
    reader = asyncio.ensure_future(body.read())
    await asyncio.sleep(0)
    body.finish()
    assert await asyncio.wait_for(reader, 1) == b""


async def test_a_broken_body_raises_after_what_arrived() -> None:
    body, _ = stream()
    body.feed(b"part")
    error = ConnectionResetError("peer went away")
    body.fail(error)
    assert not body.complete
    assert await body.read() == b"part"
    with pytest.raises(ConnectionResetError):
        await body.read()
    assert body.finished


async def test_fail_after_finish_changes_nothing() -> None:
    body, _ = stream()
    body.finish()
    body.fail(RuntimeError("late"))
    assert body.complete and await body.read() == b""


async def test_fail_wakes_a_waiting_reader() -> None:
    body, _ = stream()
    reader = asyncio.ensure_future(body.read())
    await asyncio.sleep(0)
    body.fail(EOFError())
    with pytest.raises(EOFError):
        await asyncio.wait_for(reader, 1)


async def test_the_producer_is_paused_over_high_water_and_resumed_at_low_water() -> None:
    body, transport = stream()
    piece = b"x" * (64 * 1024)
    fed = 0
    while fed <= HIGH_WATER:
        assert transport.calls == []
        body.feed(piece)
        fed += len(piece)
    assert transport.calls == ["pause"]
    body.feed(piece)  # already paused: no second pause
    fed += len(piece)
    assert transport.calls == ["pause"]
    while fed - len(piece) > LOW_WATER:
        assert await body.read() == piece
        fed -= len(piece)
        assert transport.calls == ["pause"], fed
    assert await body.read() == piece  # down to LOW_WATER: resumed once
    assert transport.calls == ["pause", "resume"]


async def test_take_all_joins_what_arrived_and_resumes() -> None:
    body, transport = stream()
    body.feed(b"a" * HIGH_WATER)
    body.feed(b"b")
    assert transport.calls == ["pause"]
    body.finish()
    assert body.take_all() == b"a" * HIGH_WATER + b"b"
    assert transport.calls == ["pause", "resume"]
    assert body.take_all() == b""
    one, _ = stream()
    one.feed(b"only")
    assert one.take_all() == b"only"


async def test_read_all_stops_at_the_limit() -> None:
    body, _ = stream()
    for piece in (b"12345", b"67890"):
        body.feed(piece)
    body.finish()
    assert await body.read_all(10) == b"1234567890"
    over, _ = stream()
    over.feed(b"12345")
    over.feed(b"678901")
    over.finish()
    assert await over.read_all(10) is None


async def test_pieces_iterates_to_the_end() -> None:
    body, _ = stream()
    for piece in (b"a", b"b", b"c"):
        body.feed(piece)
    body.finish()
    assert [p async for p in body.pieces()] == [b"a", b"b", b"c"]


async def test_wake_resolves_only_a_pending_waiter() -> None:
    loop = asyncio.get_running_loop()
    wake(None)
    waiter = loop.create_future()
    wake(waiter)
    assert waiter.result() is None
    wake(waiter, RuntimeError("too late"))  # already done: ignored
    failing = loop.create_future()
    wake(failing, ValueError("x"))
    with pytest.raises(ValueError):
        failing.result()


class Protocol(WriteFlow):
    """WriteFlow as a protocol sees it: the transport calls pause/resume; a lost connection wakes the writer."""

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError()
        self._wake_writer(self._lost)


async def test_drain_returns_at_once_unless_paused() -> None:
    protocol = Protocol()
    await asyncio.wait_for(protocol.drain(), 1)
    protocol.pause_writing()
    drain = asyncio.ensure_future(protocol.drain())
    await asyncio.sleep(0)
    assert not drain.done()
    protocol.resume_writing()
    await asyncio.wait_for(drain, 1)


async def test_drain_raises_when_the_connection_is_lost() -> None:
    protocol = Protocol()
    protocol.pause_writing()
    drain = asyncio.ensure_future(protocol.drain())
    await asyncio.sleep(0)
    protocol.connection_lost(BrokenPipeError())
    with pytest.raises(BrokenPipeError):
        await asyncio.wait_for(drain, 1)
    with pytest.raises(BrokenPipeError):
        await protocol.drain()  # and at once for any later write
