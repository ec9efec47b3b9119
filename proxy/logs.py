"""structlog set-up: one JSON event per line on stderr (tokens are never logged).

Every injection is logged (``fault_injected``), so a fault applied to every request logs a line
per request: the chain is structlog's own (level, ISO UTC timestamp, exception text, JSON), with
the two costly steps done for less (``benchmarks/README.md`` has the measurements): the
timestamp's date and time to the second are formatted once per second, and the JSON encoder is
made once. Lines logged in one turn of the event loop go out together, in one write at its end
(``LineWriter``); errors, and lines logged with no loop running, go at once.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

EventDict = MutableMapping[str, Any]


def configure_logging(level: str = "info", json_output: bool = True) -> None:
    renderer = render_json if json_output else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            UtcTimestamp(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=LineWriter.factory(sys.stderr),
        cache_logger_on_first_use=True,
    )


class LineWriter:
    """structlog's logger: lines go to ``stream`` in one write at the end of the event loop's turn
    (a write and a flush per line cost more than the line's JSON on a busy proxy)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._lock = threading.Lock()  # a line may come from another thread (a default executor's)
        atexit.register(self.flush)  # what a loop that stopped for good left behind

    @classmethod
    def factory(cls, stream: TextIO) -> Any:
        writer = cls(stream)
        return lambda *args: writer

    def msg(self, message: str) -> None:
        with self._lock:
            self._pending.append(message)
            if len(self._pending) > 1:
                return  # a flush is due already
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop in this thread: at once
            self.flush()

    def msg_now(self, message: str) -> None:
        with self._lock:
            self._pending.append(message)
        self.flush()

    debug = info = warning = warn = log = msg
    error = critical = fatal = exception = msg_now

    def flush(self) -> None:
        with self._lock:
            if not self._pending:
                return
            lines, self._pending = self._pending, []
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()


class UtcTimestamp:
    """``timestamp``: what ``TimeStamper(fmt="iso", utc=True)`` writes (``2026-12-05T04:20:00.123456Z``;
    no fraction when it is 0), with the part to the second formatted once per second."""

    __slots__ = ("_clock", "_second", "_prefix")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: Any, method: str, event_dict: EventDict) -> EventDict:
        now = self._clock()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        micros = int((now - second) * 1_000_000)
        event_dict["timestamp"] = f"{self._prefix}.{micros:06d}Z" if micros else f"{self._prefix}Z"
        return event_dict


def _fallback(value: Any) -> Any:
    """What is not JSON goes as its ``__structlog__()`` or ``repr`` (as structlog's ``JSONRenderer`` does)."""
    structlog_form = getattr(value, "__structlog__", None)
    return structlog_form() if callable(structlog_form) else repr(value)


_encode = json.JSONEncoder(default=_fallback).encode  # made once: json.dumps(default=...) builds one per call


def render_json(logger: Any, method: str, event_dict: EventDict) -> str:
    return _encode(event_dict)
