"""Live terminal view for ``brownout load`` and ``brownout run``.

On a TTY a few lines are redrawn in place (ANSI), at most ``max_fps`` times a second; off a
TTY (CI logs, pipes) one plain line is printed per window instead, with that window's own
figures (``window_state``): its rate, latency, errors and drops, never the run's so far.
A latency without data (nothing answered yet) shows as ``n/a``, never as 0. Formatting is
pure (``format_lines``, ``format_plain``, ``redraw``) so it is tested without a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from brownout.windows import WindowStats

_CLEAR_LINE = "\x1b[2K"


@dataclass(frozen=True, slots=True)
class LiveState:
    elapsed_s: float
    total_s: float
    target_rate: float
    achieved_rate: float
    p50_ms: float | None  # None: no answer to measure
    p99_ms: float | None
    completed: int
    errors: int
    dropped: int
    in_flight: int
    extra: tuple[str, ...] = field(default=())  # caller's lines: active faults, SLA state, ...
    label: str = ""  # what the figures cover, e.g. "window 3 (10s–15s)"

    @property
    def error_rate(self) -> float:
        return self.errors / self.completed if self.completed else 0.0


def window_state(stats: WindowStats, *, elapsed_s: float, total_s: float, target_rate: float, in_flight: int,
                 extra: tuple[str, ...] = (), label: str | None = None) -> LiveState:
    """A closed window's line: its own rate, latency, errors and drops."""
    rate = stats.sent / stats.duration if stats.duration > 0 else 0.0
    if label is None:
        label = f"window {stats.index} ({stats.start:g}s–{stats.end:g}s)"
    return LiveState(elapsed_s, total_s, target_rate, rate, stats.p50_ms, stats.p99_ms, stats.sent, stats.errors,
                     stats.dropped, in_flight, extra, label)


def _ms(value: float | None, width: int = 0) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:{width}.2f}"


def _bar(fraction: float, width: int) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * filled + "░" * (width - filled)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def format_lines(state: LiveState, width: int = 80) -> list[str]:
    """The TTY view: progress, rate, latency, errors; then the caller's extra lines."""
    fraction = state.elapsed_s / state.total_s if state.total_s > 0 else 1.0
    head = f" {_clock(state.elapsed_s)}/{_clock(state.total_s)} {fraction * 100:3.0f}%"
    lines = [
        "[" + _bar(fraction, max(10, width - len(head) - 2)) + "]" + head,
        f"rate     {state.achieved_rate:9.1f}/s  target {state.target_rate:.1f}/s",
        f"latency  p50 {_ms(state.p50_ms, 8)} ms   p99 {_ms(state.p99_ms, 8)} ms",
        f"requests {state.completed:9d}   errors {state.errors} ({state.error_rate:.2%})"
        f"   dropped {state.dropped}   in-flight {state.in_flight}",
        *state.extra,
    ]
    return [line[:width] for line in lines]


def format_plain(state: LiveState) -> str:
    """One log line per window for non-TTY output."""
    extra = ("  " + "; ".join(state.extra)) if state.extra else ""
    label = f" {state.label}:" if state.label else ""
    return (
        f"[{_clock(state.elapsed_s)}/{_clock(state.total_s)}]{label} rate {state.achieved_rate:.1f}/s"
        f" (target {state.target_rate:.1f}) p50 {_ms(state.p50_ms)}ms p99 {_ms(state.p99_ms)}ms"
        f" errors {state.errors} ({state.error_rate:.2%}) dropped {state.dropped}"
        f" in-flight {state.in_flight}{extra}"
    )


def redraw(lines: Sequence[str], previous: int) -> str:
    """ANSI that moves up over the ``previous`` lines drawn and writes ``lines`` over them."""
    up = f"\x1b[{previous}F" if previous else ""
    out = up + "".join(f"{_CLEAR_LINE}{line}\n" for line in lines)
    # If the view shrank, wipe the leftover lines and come back up.
    leftover = previous - len(lines)
    if leftover > 0:
        out += f"{_CLEAR_LINE}\n" * leftover + f"\x1b[{leftover}F"
    return out


class LiveView:
    """Throttled in-place view on a TTY; plain per-window lines elsewhere."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        max_fps: float = 4.0,
        width: int = 80,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.min_interval = 1.0 / max_fps
        self.width = width
        self.clock = clock
        self._drawn = 0
        self._last = -1e9

    def update(self, state: LiveState, *, force: bool = False) -> None:
        """Redraw (TTY only), at most ``max_fps`` times a second unless ``force``."""
        if not self.tty:
            return
        now = self.clock()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        lines = format_lines(state, self.width)
        self.stream.write(redraw(lines, self._drawn))
        self.stream.flush()
        self._drawn = len(lines)

    def window(self, state: LiveState) -> None:
        """A window closed: off a TTY, log one line for it."""
        if self.tty:
            return
        self.stream.write(format_plain(state) + "\n")
        self.stream.flush()

    def close(self, state: LiveState | None = None) -> None:
        """Draw the final state (TTY) and leave the cursor below the view."""
        if self.tty and state is not None:
            self.update(state, force=True)
        self._drawn = 0
