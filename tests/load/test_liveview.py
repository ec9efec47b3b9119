"""Live view formatting (pure) and its throttling, on a fake clock and a string stream."""

from __future__ import annotations

import io

from brownout.liveview import LiveState, LiveView, format_lines, format_plain, redraw

STATE = LiveState(elapsed_s=65, total_s=180, target_rate=500, achieved_rate=499.2, p50_ms=12.3, p99_ms=240.5,
                  completed=32000, errors=32, dropped=4, in_flight=17, extra=("faults: latency on feature-store",))


def test_format_lines_shows_progress_rate_latency_errors_and_extras() -> None:
    lines = format_lines(STATE, width=72)
    text = "\n".join(lines)
    assert lines[0].endswith("1:05/3:00  36%") and all(len(line) <= 72 for line in lines)
    for part in ("499.2/s", "target 500.0/s", "p50    12.30 ms", "p99   240.50 ms", "errors 32 (0.10%)",
                 "dropped 4", "in-flight 17", "faults: latency on feature-store"):
        assert part in text


def test_plain_line_for_logs() -> None:
    line = format_plain(STATE)
    assert line.startswith("[1:05/3:00] rate 499.2/s (target 500.0)") and "\n" not in line
    assert "dropped 4" in line and line.endswith("faults: latency on feature-store")


def test_redraw_moves_up_over_the_previous_frame() -> None:
    assert redraw(["a", "b"], 0) == "\x1b[2Ka\n\x1b[2Kb\n"
    assert redraw(["a"], 2).startswith("\x1b[2F\x1b[2Ka\n")
    assert redraw(["a"], 2).endswith("\x1b[2K\n\x1b[1F")  # wipes the line the view no longer uses


def test_tty_view_is_throttled_and_plain_view_prints_per_window() -> None:
    now = [0.0]
    out = io.StringIO()
    view = LiveView(out, tty=True, max_fps=4, clock=lambda: now[0])
    view.update(STATE)
    view.update(STATE)  # same instant: skipped
    now[0] = 0.3
    view.update(STATE)
    assert out.getvalue().count("rate ") == 2 and "\x1b[5F" in out.getvalue()
    view.window(STATE)  # TTY: windows are not logged
    assert out.getvalue().count("rate ") == 2
    plain = io.StringIO()
    log = LiveView(plain, tty=False)
    log.update(STATE)
    log.window(STATE)
    log.window(STATE)
    assert plain.getvalue().count("\n") == 2 and "\x1b" not in plain.getvalue()
