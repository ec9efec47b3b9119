"""Golden sets: fixed inputs with known outputs, probed continuously through the proxy.

A golden file is JSONL, one case a line: ``{"body": {...}, "expected": 0.0123, "label": 0}``
(``method``, ``path`` and ``headers`` optional as in payload corpora). ``expected`` is the
value at ``steady_state.predictions.score``; numbers agree within ``tolerance``, anything
else must be equal. ``label`` (0/1, optional) enables precision/recall/Brier.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from brownout.steady.probing import probe_until
from faults.errors import InvalidInput, InvalidInputs
from faults.jsonpath import JsonPath

_CASE_KEYS = frozenset({"body", "expected", "label", "method", "path", "headers"})


@dataclass(frozen=True)
class GoldenCase:
    line: int
    body: Any
    expected: Any
    label: int | None = None
    method: str = "POST"
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GoldenSet:
    source: Path
    cases: tuple[GoldenCase, ...]

    @property
    def has_labels(self) -> bool:
        return any(c.label is not None for c in self.cases)


def load_golden(path: Path) -> GoldenSet:
    """Read a golden JSONL file; every bad line is reported (with its line number) at once."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read golden set: {exc}", source=str(path)) from None
    cases: list[GoldenCase] = []
    errors: list[InvalidInput] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(_case(json.loads(line), lineno))
        except ValueError as exc:
            errors.append(InvalidInput(str(exc), source=str(path), line=lineno))
    if not errors and not cases:
        errors.append(InvalidInput("the golden set is empty", source=str(path)))
    if errors:
        raise InvalidInputs(errors)
    return GoldenSet(path, tuple(cases))


def _case(obj: Any, line: int) -> GoldenCase:
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    unknown = sorted(set(obj) - _CASE_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; a case has body, expected, label, method, path, headers")
    if "body" not in obj or "expected" not in obj:
        raise ValueError("each case needs 'body' and 'expected'")
    label = obj.get("label")
    if label is not None and (isinstance(label, bool) or label not in (0, 1)):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    headers = obj.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object")
    return GoldenCase(
        line=line, body=obj["body"], expected=obj["expected"], label=label,
        method=str(obj.get("method", "POST")).upper(), path=obj.get("path"),
        headers=tuple((str(k), str(v)) for k, v in headers.items()),
    )


def lenient_json(raw: bytes | str) -> tuple[Any, bool]:
    """Parse JSON accepting NaN/Infinity (as servers emit them); also say whether strict JSON would."""
    strict = True

    def constant(name: str) -> float:
        nonlocal strict
        strict = False
        return float(name.replace("Infinity", "inf"))

    return json.loads(raw, parse_constant=constant), strict


def agrees(expected: Any, actual: Any, tolerance: float) -> bool:
    """Numbers within ``tolerance`` (NaN and Inf never agree); anything else equal."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isfinite(actual) and abs(float(actual) - float(expected)) <= tolerance
    return bool(expected == actual)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One golden probe: when it was sent (run seconds), which case, what came back."""

    at: float
    case: GoldenCase
    status: int
    latency_s: float
    body: bytes | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    at: float
    agreed: bool
    value: Any
    expected: Any
    label: int | None
    reason: str | None = None

    @property
    def score(self) -> float | None:
        """The value as a probability, for labelled metrics (None when not a finite number)."""
        v = self.value
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def judge_probe(probe: ProbeResult, score: JsonPath, tolerance: float) -> ProbeOutcome:
    case = probe.case

    def out(agreed: bool, value: Any = None, reason: str | None = None) -> ProbeOutcome:
        return ProbeOutcome(probe.at, agreed, value, case.expected, case.label, reason)

    if probe.error is not None or probe.status == 0:
        return out(False, reason=f"transport error: {probe.error or 'failed'}")
    if not 200 <= probe.status < 300:
        return out(False, reason=f"status {probe.status}")
    try:
        doc, _ = lenient_json(probe.body or b"")
    except ValueError:
        return out(False, reason="response is not JSON")
    found = score.find(doc)
    if not found:
        return out(False, reason=f"{score.text} not in response")
    value = found[0]
    if agrees(case.expected, value, tolerance):
        return out(True, value)
    return out(False, value, f"{score.text} = {value!r}, expected {case.expected!r} ± {tolerance:g}")


def agreement_rate(outcomes: Sequence[ProbeOutcome]) -> float | None:
    return sum(o.agreed for o in outcomes) / len(outcomes) if outcomes else None


# -- probing through the proxy ----------------------------------------------------------

@dataclass
class GoldenProber:
    """Sends the golden cases in turn, one every ``interval`` seconds, until stopped.

    ``clock`` returns run seconds (the same clock as ``RequestRecord.scheduled_at``).
    """

    session: aiohttp.ClientSession
    url: str
    golden: GoldenSet
    interval: float
    clock: Callable[[], float]
    on_result: Callable[[ProbeResult], Awaitable[None] | object]
    timeout: float = 10.0
    _next: int = field(default=0, init=False)

    async def probe_once(self) -> ProbeResult:
        case = self.golden.cases[self._next % len(self.golden.cases)]
        self._next += 1
        url = URL(self.url) if case.path is None else _with_target(self.url, case.path)
        at = self.clock()
        started = time.perf_counter()
        try:
            async with self.session.request(
                case.method, url, json=case.body, headers=dict(case.headers),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                body = await response.read()
                return ProbeResult(at, case, response.status, time.perf_counter() - started, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return ProbeResult(at, case, 0, time.perf_counter() - started, None, exc.__class__.__name__)

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until ``stop`` is set (bounded by the caller's run time)."""
        await probe_until(stop, self.probe_once, self.on_result, self.interval)


def _with_target(url: str, target: str) -> URL:
    """``url`` with the case's path and its query as recorded, byte for byte (a ``?`` is not part of the path)."""
    path, _, query = target.partition("?")
    base = URL(url).with_path(path).with_query(None)
    return URL(f"{base}?{query}", encoded=True) if query else base
