"""``brownout corpus golden``: a golden set from a recording (or an imported corpus).

A line becomes a golden case ``{"body", "expected", "method", "path"}`` (the format
``brownout.steady.golden`` reads; ``headers`` only for those named with ``--header``) when
its answer is what an undisturbed model said: every line is dropped under the first of these
reasons that applies, in this order, and counted:

    no response recorded · status not 2xx · a fault applied · answer is an event stream ·
    answer is not JSON · score missing · score not finite · request body not JSON ·
    duplicate request

A score is the first value the ``--score`` path selects; ``null`` counts as missing, a number
must be finite (a NaN or infinite score is read from a lenient JSON body too), strings and
booleans are kept as exact labels. Golden cases are sent as JSON bodies to the recorded path
and query, hence the last two reasons. Requests are identical when method, path (with its
query) and body are; the first is kept. No ``label`` is written: a recording
holds what the model said, not the ground truth.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brownout.corpus.output import atomic_text
from brownout.steady.golden import lenient_json
from faults.jsonpath import JsonPath
from proxy.recording import BinaryBody, RecordLine, read_lines

REASONS = (
    "no response recorded", "status not 2xx", "a fault applied", "answer is an event stream",
    "answer is not JSON", "score missing", "score not finite", "request body not JSON", "duplicate request",
)
_MISSING = object()


@dataclass(frozen=True)
class GoldenResult:
    read: int
    kept: int
    dropped: Counter[str]  # reason -> lines


def derive_golden(corpus: Path, out: Path, score: JsonPath, headers: Sequence[str] = ()) -> GoldenResult:
    """Write the golden set to ``out`` (all or nothing); raise ``InvalidInput`` if no line qualifies."""
    keep_headers = {h.lower() for h in headers}
    dropped: Counter[str] = Counter()
    seen: set[tuple[str, str | None, str]] = set()
    read = 0
    cases: list[dict[str, Any]] = []
    for _, line in read_lines(corpus):
        read += 1
        case = _case(line, score, keep_headers)
        if isinstance(case, str):
            dropped[case] += 1
            continue
        key = (line.method, line.path, json.dumps(line.body, sort_keys=True, separators=(",", ":")))
        if key in seen:
            dropped["duplicate request"] += 1
            continue
        seen.add(key)
        cases.append(case)
    kept = len(cases)
    result = GoldenResult(read, kept, dropped)
    if not kept:
        return result
    with atomic_text(out) as handle:
        for case in cases:
            handle.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")) + "\n")
    return result


def _case(line: RecordLine, score: JsonPath, keep_headers: set[str]) -> dict[str, Any] | str:
    """The golden case for ``line``, or the reason it is dropped."""
    response = line.response
    if response is None:
        return "no response recorded"
    if not 200 <= response.status < 300:
        return "status not 2xx"
    if line.faults:
        return "a fault applied"
    if response.events is not None:
        return "answer is an event stream"
    doc = _answer(response.body)
    if doc is _MISSING:
        return "answer is not JSON"
    found = score.find(doc)
    value = found[0] if found else None
    if value is None:
        return "score missing"
    if isinstance(value, float) and not math.isfinite(value):
        return "score not finite"
    if isinstance(line.body, BinaryBody):
        return "request body not JSON"
    case: dict[str, Any] = {"body": line.body, "expected": value, "method": line.method}
    if line.path is not None:
        case["path"] = line.path
    kept = {name: v for name, v in line.headers if name.lower() in keep_headers}
    if kept:
        case["headers"] = kept
    return case


def _answer(body: Any) -> Any:
    if isinstance(body, BinaryBody):
        try:
            return lenient_json(body.data)[0]  # a NaN score makes the body lenient JSON only
        except (ValueError, RecursionError):
            return _MISSING
    return _MISSING if body is None else body
