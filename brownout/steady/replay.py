"""Replay agreement: does each replayed answer agree with the answer recorded for the same request?

Each request the load generator makes from ``load.payloads`` carries its line's index
(``RequestRecord.payload``), so its answer is compared with that line's ``response``:

* the **status** must be the recorded one (no answer at all, status 0, is ``no_answer``);
* a JSON answer must hold the same document: ``score`` within ``tolerance``
  (``score``), no recorded field missing (``missing_field``), no field the recording lacks
  (``unexpected_field``), every other value equal (``value``). Paths in ``ignore`` are not
  compared, nor are values the recording holds redacted (``[REDACTED]``);
* an event stream must carry the same events (their data compared as JSON answers are),
  other bodies the same bytes (``body``; ``not_json`` when JSON was recorded).

Lines without a recorded answer are not compared. The first difference found names the
request's disagreement; a window keeps the count per kind and its first examples, each
naming the recording's line.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from brownout.experiment.model import Experiment
from brownout.load.replay import Recorded, load_recorded
from brownout.records import RequestRecord
from brownout.steady.golden import lenient_json
from faults import sse
from faults.jsonpath import JsonPath, compile_path
from proxy.recording import MARKER, BinaryBody, RecordedResponse

EXAMPLES = 5  # disagreements kept per window (and per phase) to show which requests and how
_IGNORED = object()


@dataclass(frozen=True, slots=True)
class Disagreement:
    line: int  # the recording's line (1-based, as an editor shows it)
    kind: str  # status, no_answer, score, missing_field, unexpected_field, value, body, events, not_json
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.detail}"


@dataclass
class ReplayTally:
    """A window's (or phase's) comparisons."""

    compared: int = 0
    agreed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    examples: list[Disagreement] = field(default_factory=list)

    def add(self, outcome: Disagreement | None) -> None:
        self.compared += 1
        if outcome is None:
            self.agreed += 1
            return
        self.kinds[outcome.kind] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(outcome)

    def merge(self, other: ReplayTally) -> None:
        self.compared += other.compared
        self.agreed += other.agreed
        self.kinds.update(other.kinds)
        self.examples = (self.examples + other.examples)[:EXAMPLES]

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


class ReplayJudge:
    def __init__(self, recorded: Recorded, score: str | None, tolerance: float, ignore: tuple[str, ...]) -> None:
        self.recorded = recorded
        self.score: JsonPath | None = compile_path(score) if score else None
        self.tolerance = tolerance
        self.ignore = tuple(compile_path(p) for p in ignore)

    def judge(self, record: RequestRecord) -> Disagreement | None | bool:
        """A disagreement, None when the answers agree, False when there is nothing to compare."""
        index = record.payload
        if index is None or record.dropped or record.edge_case is not None:
            return False
        expected = self.recorded.responses[index] if 0 <= index < len(self.recorded.responses) else None
        if expected is None:
            return False
        line = self.recorded.lines[index]
        if record.status == 0:
            return Disagreement(line, "no_answer", f"no answer ({record.error or 'failed'}), recorded status "
                                                   f"{expected.status}")
        if record.status != expected.status:
            return Disagreement(line, "status", f"status {record.status}, recorded {expected.status}")
        found = self._body(expected, record.body or b"")
        return Disagreement(line, *found) if found is not None else None

    def _body(self, expected: RecordedResponse, raw: bytes) -> tuple[str, str] | None:
        if expected.events is not None:
            got = _events(raw)
            if len(got) != len(expected.events):
                return "events", f"{len(got)} events, recorded {len(expected.events)}"
            for i, (event, data) in enumerate(zip(expected.events, got)):
                found = self._document(event.data, data, f"events[{i}]")
                if found is not None:
                    return found
            return None
        if isinstance(expected.body, BinaryBody):
            if raw != expected.body.data:
                return "body", f"{len(raw)} bytes differ from the {len(expected.body.data)} recorded"
            return None
        if expected.body is None:
            return ("body", f"{len(raw)} bytes, recorded none") if raw else None
        try:
            actual, _ = lenient_json(raw)
        except ValueError:
            return "not_json", f"the answer is not JSON ({len(raw)} bytes), recorded a JSON document"
        return self._document(expected.body, actual, "")

    def _document(self, expected: Any, actual: Any, where: str) -> tuple[str, str] | None:
        expected, actual = _copy(expected), _copy(actual)
        for path in self.ignore:
            path.set(expected, _ignored)
            path.set(actual, _ignored)
        if self.score is not None and isinstance(expected, (dict, list)):
            want, got = self.score.find(expected), self.score.find(actual)
            if want and want[0] is not _IGNORED and want[0] != MARKER:
                label = f"{where}{self.score.text.removeprefix('$')}" if where else self.score.text
                if not got:
                    return "missing_field", f"{label} missing, recorded {want[0]!r}"
                if not _close(want[0], got[0], self.tolerance):
                    return "score", f"{label} = {got[0]!r}, recorded {want[0]!r} ± {self.tolerance:g}"
            self.score.set(expected, _ignored)
            self.score.set(actual, _ignored)
        return _compare(expected, actual, where or "$")


def _compare(expected: Any, actual: Any, path: str) -> tuple[str, str] | None:
    if expected is _IGNORED or expected == MARKER:
        return None
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            if key not in actual:
                if value is not _IGNORED:
                    return "missing_field", f"{path}.{key} missing, recorded {_short(value)}"
                continue
            found = _compare(value, actual[key], f"{path}.{key}")
            if found is not None:
                return found
        for key in actual:
            if key not in expected and actual[key] is not _IGNORED:
                return "unexpected_field", f"{path}.{key} = {_short(actual[key])}, not in the recorded answer"
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return "value", f"{path} has {len(actual)} items, recorded {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            found = _compare(e, a, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if actual is _IGNORED or (type(expected) is type(actual) or _numbers(expected, actual)) and expected == actual:
        return None
    return "value", f"{path} = {_short(actual)}, recorded {_short(expected)}"


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _close(expected: Any, actual: Any, tolerance: float) -> bool:
    if _numbers(expected, actual):
        return math.isfinite(actual) and abs(float(actual) - float(expected)) <= tolerance
    return bool(expected == actual)


def _copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_copy(v) for v in doc]
    return doc


def _ignored(_: Any) -> Any:
    return _IGNORED


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _events(raw: bytes) -> list[Any]:
    splitter = sse.EventSplitter()
    chunks = splitter.feed(raw)
    tail = splitter.tail()
    if tail.strip():
        chunks.append(tail)
    out = []
    for chunk in chunks:
        event = sse.parse(chunk)
        if event.data is None:
            continue
        try:
            out.append(json.loads(event.data) if event.data[:1] in ("{", "[") else event.data)
        except ValueError:
            out.append(event.data)
    return out


def replay_judge(experiment: Experiment) -> ReplayJudge | None:
    """The experiment's replay agreement judge (None: it asks for none)."""
    predictions = experiment.steady_state.predictions
    if predictions is None or predictions.replay is None or experiment.load.payloads is None:
        return None
    replay = predictions.replay
    recorded = load_recorded(experiment.load.payloads, by_time=experiment.load.shape == "replay")
    tolerance = replay.tolerance if replay.tolerance is not None else predictions.tolerance
    return ReplayJudge(recorded, replay.score or predictions.score, tolerance, replay.ignore)
