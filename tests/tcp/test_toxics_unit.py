"""Each toxic on a fake clock with a seeded rng: instant and exact."""

from __future__ import annotations

import random

import pytest

from faults.errors import InvalidInput
from faults.toxics import (
    TOXICS,
    AttributeDecodeError,
    BandwidthToxic,
    Chunk,
    CloseLink,
    LatencyToxic,
    LimitDataToxic,
    NoopToxic,
    ResetPeerToxic,
    SlicerToxic,
    SlowCloseToxic,
    Stage,
    TimeoutToxic,
    Toxic,
    known_toxics,
    roll,
    toxic_class,
)


class FakeClock:
    """A StageContext whose sleeps advance a fake clock; ``interrupt_after`` cuts sleeps short."""

    def __init__(self, seed: int = 7) -> None:
        self.t = 1000.0
        self.rng = random.Random(seed)
        self.sleeps: list[float] = []
        self.holds: list[float] = []
        self.interrupt_at: float | None = None

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        if self.interrupt_at is not None and self.t + seconds >= self.interrupt_at:
            self.t = max(self.t, self.interrupt_at)
            return False
        self.t += seconds
        return True

    async def hold(self, seconds: float) -> None:
        self.holds.append(seconds)
        self.t += seconds


class Sink:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.out: list[tuple[bytes, float, float]] = []  # data, stamp, time emitted

    async def __call__(self, chunk: Chunk) -> None:
        self.out.append((chunk.data, chunk.ts, self.clock.t))

    @property
    def data(self) -> bytes:
        return b"".join(d for d, _, _ in self.out)


def stage_of(toxic: Toxic, clock: FakeClock, previous: Stage | None = None) -> Stage:
    return toxic.stage(clock, previous)


def test_registry_lists_every_toxiproxy_type() -> None:
    assert known_toxics() == sorted(["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                                     "limit_data", "noop"])
    assert len(TOXICS) == 8
    assert toxic_class("slicer") is SlicerToxic
    with pytest.raises(InvalidInput, match="known types"):
        toxic_class("down")


def test_attributes_decode_like_go() -> None:
    toxic = LatencyToxic.from_attributes({"LATENCY": 100, "unknown": 5, "jitter": None})
    assert toxic.attributes() == {"latency": 100, "jitter": 0}
    partial = LatencyToxic.from_attributes({"jitter": 5}, base=toxic)
    assert partial.attributes() == {"latency": 100, "jitter": 5}
    assert NoopToxic.from_attributes({"x": 1}).attributes() == {}
    for bad in ("100", 1.5, True, [1]):
        with pytest.raises(AttributeDecodeError, match="cannot unmarshal"):
            LatencyToxic.from_attributes({"latency": bad})
    # Values accepted by Toxiproxy are kept (negative latency means no delay) ...
    assert LatencyToxic.from_attributes({"latency": -5}).latency == -5
    # ... but the ones that crash it are refused.
    with pytest.raises(InvalidInput, match="rate"):
        BandwidthToxic(rate=-1)
    with pytest.raises(InvalidInput, match="average_size"):
        SlicerToxic(average_size=0, size_variation=0)


def test_roll_is_per_draw_and_bounded() -> None:
    rng = random.Random(3)
    draws = [roll(0.5, rng) for _ in range(1000)]
    assert 400 < sum(draws) < 600
    assert all(roll(1.0, rng) for _ in range(10))
    assert not any(roll(0.0, rng) for _ in range(10))
    assert roll(2.5, rng) and not roll(-1, rng)


async def test_latency_is_pipelined_against_receive_time() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    stage = stage_of(LatencyToxic(latency=100), clock)
    # Two chunks received 10 ms apart, processed only after the first one's delay:
    await stage.push(Chunk(b"a", 1000.0), clock, sink)
    await stage.push(Chunk(b"b", 1000.010), clock, sink)
    assert [round(e - 1000.0, 6) for _, _, e in sink.out] == [0.1, 0.11]
    # The second chunk waited only for what was left of its own delay.
    assert [round(s, 6) for s in clock.sleeps] == [0.1, 0.01]
    # A chunk that already waited longer than the delay goes at once.
    clock.sleeps.clear()
    await stage.push(Chunk(b"c", clock.t - 1), clock, sink)
    assert clock.sleeps == []


async def test_latency_restamps_so_two_toxics_add_up() -> None:
    clock = FakeClock()
    first, second = LatencyToxic(latency=100).stage(clock, None), LatencyToxic(latency=100).stage(clock, None)
    sink = Sink(clock)
    await first.push(Chunk(b"x", clock.t), clock, lambda c: second.push(c, clock, sink))
    assert round(sink.out[0][2] - 1000.0, 6) == 0.2


async def test_latency_jitter_is_seeded_and_within_bounds() -> None:
    delays = []
    for seed in (1, 1, 2):
        clock = FakeClock(seed)
        stage = LatencyToxic(latency=100, jitter=20).stage(clock, None)
        sink = Sink(clock)
        for _ in range(50):
            await stage.push(Chunk(b"x", clock.t), clock, sink)
        delays.append([round(s * 1000) for s in clock.sleeps])
    assert delays[0] == delays[1] != delays[2]
    assert all(80 <= d < 120 for d in delays[0])
    assert len(set(delays[0])) > 10


async def test_latency_interrupted_releases_the_chunk() -> None:
    clock = FakeClock()
    clock.interrupt_at = clock.t + 0.03
    sink = Sink(clock)
    await LatencyToxic(latency=100).stage(clock, None).push(Chunk(b"held", clock.t), clock, sink)
    assert sink.data == b"held" and round(sink.out[0][2] - 1000.0, 6) == 0.03


async def test_bandwidth_paces_at_rate() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    stage = BandwidthToxic(rate=100).stage(clock, None)  # 100 KB/s
    for _ in range(5):
        await stage.push(Chunk(b"x" * 10_000, clock.t), clock, sink)  # 50 KB in all
    assert sink.data == b"x" * 50_000
    assert clock.t - 1000.0 == pytest.approx(0.5, abs=1e-6)


async def test_bandwidth_splits_big_chunks_every_100ms() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    await BandwidthToxic(rate=10).stage(clock, None).push(Chunk(b"y" * 3500, clock.t), clock, sink)
    assert [len(d) for d, _, _ in sink.out] == [1000, 1000, 1000, 500]
    assert [round(e - 1000.0, 3) for _, _, e in sink.out] == [0.1, 0.2, 0.3, 0.35]


async def test_bandwidth_zero_stalls_until_interrupted() -> None:
    clock = FakeClock()
    clock.interrupt_at = clock.t + 5
    sink = Sink(clock)
    await BandwidthToxic(rate=0).stage(clock, None).push(Chunk(b"z", clock.t), clock, sink)
    assert clock.sleeps == [float("inf")] and sink.data == b"z" and clock.t == 1005.0


async def test_slow_close_delays_only_the_close() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    stage = SlowCloseToxic(delay=300).stage(clock, None)
    await stage.push(Chunk(b"data", clock.t), clock, sink)
    assert sink.data == b"data" and clock.sleeps == []
    await stage.eof(clock)
    assert clock.sleeps == [0.3]


async def test_timeout_black_holes_and_closes_when_idle() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    stage = TimeoutToxic(timeout=300).stage(clock, None)
    assert stage.deadline == pytest.approx(1000.3) and stage.close_on_remove
    clock.t += 0.1
    await stage.push(Chunk(b"lost", clock.t), clock, sink)
    assert sink.out == [] and stage.deadline == pytest.approx(1000.4)  # idle timer restarted
    with pytest.raises(CloseLink) as closed:
        await stage.on_deadline(clock)
    assert not closed.value.reset
    assert TimeoutToxic(timeout=0).stage(clock, None).deadline is None  # never closes by itself
    with pytest.raises(CloseLink):
        await TimeoutToxic(timeout=0).stage(clock, None).eof(clock)


async def test_reset_peer_drops_the_chunk_waits_then_resets() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    stage = ResetPeerToxic(timeout=250).stage(clock, None)
    with pytest.raises(CloseLink) as closed:
        await stage.push(Chunk(b"dropped", clock.t), clock, sink)
    assert closed.value.reset and sink.out == [] and clock.holds == [0.25]
    with pytest.raises(CloseLink) as on_eof:
        await ResetPeerToxic().stage(clock, None).eof(clock)
    assert on_eof.value.reset


async def test_slicer_matches_toxiproxy_bisection() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    await SlicerToxic(average_size=10, size_variation=0, delay=0).stage(clock, None).push(
        Chunk(bytes(range(100)), clock.t), clock, sink)
    sizes = [len(d) for d, _, _ in sink.out]
    assert len(sizes) == 16 and sorted(set(sizes)) == [6, 7] and sink.data == bytes(range(100))


async def test_slicer_variation_and_delay() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    payload = bytes(1000)
    await SlicerToxic(average_size=50, size_variation=20, delay=2000).stage(clock, None).push(
        Chunk(payload, clock.t), clock, sink)
    sizes = [len(d) for d, _, _ in sink.out]
    assert sum(sizes) == 1000 and max(sizes) <= 70 and min(sizes) >= 1
    assert clock.sleeps == [0.002] * len(sizes)


async def test_slicer_interrupted_sends_the_rest_at_once() -> None:
    clock = FakeClock()
    clock.interrupt_at = clock.t + 0.0025
    sink = Sink(clock)
    await SlicerToxic(average_size=10, delay=1000).stage(clock, None).push(Chunk(bytes(100), clock.t), clock, sink)
    assert sink.data == bytes(100) and len(sink.out) == 4  # three pieces, then the remainder


async def test_limit_data_truncates_and_keeps_count_across_updates() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    stage = LimitDataToxic(bytes=10).stage(clock, None)
    await stage.push(Chunk(b"12345", clock.t), clock, sink)
    updated = LimitDataToxic(bytes=12).stage(clock, stage)  # an update keeps the 5 bytes sent
    with pytest.raises(CloseLink):
        await updated.push(Chunk(b"6789abcdef", clock.t), clock, sink)
    assert sink.data == b"123456789abc"
    with pytest.raises(CloseLink):
        await LimitDataToxic(bytes=0).stage(clock, None).push(Chunk(b"x", clock.t), clock, sink)
    assert sink.data == b"123456789abc"


async def test_noop_passes_through() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    stage = NoopToxic().stage(clock, None)
    await stage.push(Chunk(b"same", 1.0), clock, sink)
    await stage.eof(clock)
    assert sink.out == [(b"same", 1.0, 1000.0)]
