"""Edge-case requests mixed into load, each with the outcome a robust API should give.

``load.edge_cases`` maps a case to a ratio (``malformed_json: 0.01``) or to
``{ratio: 0.01, expect: 4xx}`` (``expect`` may be a list of classes). An edge case that gets
a 5xx, hangs (times out) or crashes the connection — or any class it was not expected to
get — is a *finding*. Edge cases are tallied apart from normal traffic.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brownout.records import RequestRecord
from faults.errors import InvalidInput, InvalidInputs

OUTCOME_CLASSES = ("2xx", "3xx", "4xx", "5xx", "hang", "crash")
_SEVERE = frozenset({"5xx", "hang", "crash"})
_DEFAULT_EXPECT: dict[str, frozenset[str]] = {
    "malformed_json": frozenset({"4xx"}),
    "oversized": frozenset({"4xx"}),
    "missing_field": frozenset({"4xx"}),
    "wrong_type": frozenset({"4xx"}),
    "nan_infinity": frozenset({"4xx"}),
    "empty_body": frozenset({"4xx"}),
    # Valid UTF-8 in string fields is valid input: accepting it is as fine as refusing it.
    "unicode": frozenset({"2xx", "4xx"}),
}
EDGE_CASES: tuple[str, ...] = tuple(_DEFAULT_EXPECT)
DEFAULT_OVERSIZED_BYTES = 2 * 1024 * 1024
_UNICODE = "Zoë 🦊 ДЖ 北京 \u202eevil\u202c a\u0301 \u200b\U0001f468\u200d\U0001f469\u200d\U0001f467 ﷺ"


@dataclass(frozen=True, slots=True)
class EdgeCaseSpec:
    name: str
    ratio: float
    expect: frozenset[str]


@dataclass(frozen=True, slots=True)
class EdgeCaseMix:
    cases: tuple[EdgeCaseSpec, ...] = ()
    oversized_bytes: int = DEFAULT_OVERSIZED_BYTES

    @property
    def total_ratio(self) -> float:
        return sum(c.ratio for c in self.cases)

    def pick(self, u: float) -> EdgeCaseSpec | None:
        """The case for a uniform draw ``u`` in [0, 1), or None for a normal request."""
        for case in self.cases:
            if u < case.ratio:
                return case
            u -= case.ratio
        return None

    def spec(self, name: str) -> EdgeCaseSpec | None:
        return next((c for c in self.cases if c.name == name), None)


def parse_edge_cases(data: Any, field_prefix: str = "load.edge_cases") -> EdgeCaseMix:
    if data is None:
        return EdgeCaseMix()
    if not isinstance(data, Mapping):
        raise InvalidInput("must be a mapping of edge case to ratio", field_prefix)
    errors: list[InvalidInput] = []
    cases: list[EdgeCaseSpec] = []
    size = DEFAULT_OVERSIZED_BYTES
    for name, value in data.items():
        where = f"{field_prefix}.{name}"
        if name not in _DEFAULT_EXPECT:
            errors.append(InvalidInput(f"unknown edge case; known: {', '.join(EDGE_CASES)}", where))
            continue
        expect = _DEFAULT_EXPECT[name]
        if isinstance(value, Mapping):
            extra = set(value) - {"ratio", "expect", "bytes"}
            if extra or (name != "oversized" and "bytes" in value):
                errors.append(InvalidInput(f"unknown keys {sorted(map(str, extra or {'bytes'}))}", where))
                continue
            if "expect" in value:
                raw = value["expect"]
                expect = frozenset([raw] if isinstance(raw, str) else raw if isinstance(raw, list) else [])
                if not expect or not expect <= set(OUTCOME_CLASSES):
                    errors.append(InvalidInput(f"must be one or more of {', '.join(OUTCOME_CLASSES)}",
                                               f"{where}.expect"))
                    continue
            if "bytes" in value:
                size = value["bytes"]
                if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                    errors.append(InvalidInput("must be a positive integer", f"{where}.bytes"))
                    continue
            value = value.get("ratio")
            where = f"{where}.ratio"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            errors.append(InvalidInput(f"must be a ratio between 0 and 1, got {value!r}", where))
            continue
        cases.append(EdgeCaseSpec(str(name), float(value), expect))
    if not errors and sum(c.ratio for c in cases) > 1.0 + 1e-9:
        errors.append(InvalidInput("ratios add up to more than 1", field_prefix))
    if errors:
        raise errors[0] if len(errors) == 1 else InvalidInputs(errors)
    return EdgeCaseMix(tuple(cases), size)


def mutate(name: str, body: bytes, rng: random.Random, oversized_bytes: int) -> bytes:
    """The edge-case body made from a normal (rendered) body."""
    try:
        obj: Any = json.loads(body) if body else {}
    except ValueError:
        obj = {}
    if not isinstance(obj, dict):
        obj = {"value": obj}
    keys = sorted(obj)
    if name == "malformed_json":
        text = json.dumps(obj, separators=(",", ":"))
        return text[:-1].encode() + b',"' if len(text) > 2 else b'{"'
    if name == "empty_body":
        return b""
    if name == "oversized":
        pad = max(0, oversized_bytes - len(json.dumps(obj)) - 16)
        return json.dumps({**obj, "_padding": "x" * pad}, separators=(",", ":")).encode()
    if name == "missing_field":
        if keys:
            del obj[rng.choice(keys)]
        return json.dumps(obj, separators=(",", ":")).encode()
    if name == "wrong_type":
        key = rng.choice(keys) if keys else "value"
        obj[key] = _other_type(obj.get(key))
        return json.dumps(obj, separators=(",", ":")).encode()
    if name == "nan_infinity":
        numeric = [k for k in keys if isinstance(obj[k], (int, float)) and not isinstance(obj[k], bool)]
        key = rng.choice(numeric or keys or ["value"])
        obj[key] = rng.choice([math.nan, math.inf, -math.inf])
        return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()
    if name == "unicode":
        strings = [k for k in keys if isinstance(obj[k], str)]
        obj[rng.choice(strings) if strings else "note"] = _UNICODE
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    raise InvalidInput(f"unknown edge case {name!r}", "edge_cases")


def _other_type(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "not-a-boolean" if isinstance(value, bool) else [1]
    if isinstance(value, (int, float)):
        return "not-a-number"
    if isinstance(value, str):
        return 12345
    return "not-a-container"


def outcome_class(record: RequestRecord) -> str:
    if record.status == 0:
        return "hang" if record.error == "timeout" else "crash"
    return f"{min(record.status // 100, 5)}xx"


@dataclass(frozen=True, slots=True)
class Finding:
    """An edge case that did not get the outcome it should have."""

    edge_case: str
    expected: tuple[str, ...]
    got: str
    count: int
    example_status: int
    example_error: str | None

    @property
    def severe(self) -> bool:
        """5xx, hang or crash: the API broke, not merely answered unexpectedly."""
        return self.got in _SEVERE


@dataclass(frozen=True, slots=True)
class EdgeCaseStats:
    name: str
    expected: tuple[str, ...]
    sent: int
    dropped: int
    outcomes: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class EdgeCaseReport:
    cases: tuple[EdgeCaseStats, ...] = ()
    findings: tuple[Finding, ...] = ()


class EdgeCaseTally:
    """Counts edge-case outcomes; ``report()`` lists what went as expected and what did not."""

    def __init__(self, mix: EdgeCaseMix) -> None:
        self._mix = mix
        self._outcomes: dict[str, Counter[str]] = {}
        self._dropped: Counter[str] = Counter()
        self._examples: dict[tuple[str, str], RequestRecord] = {}

    def add(self, record: RequestRecord) -> None:
        name = record.edge_case
        if name is None:
            return
        if record.dropped:
            self._dropped[name] += 1
            return
        got = outcome_class(record)
        self._outcomes.setdefault(name, Counter())[got] += 1
        self._examples.setdefault((name, got), record)

    def report(self) -> EdgeCaseReport:
        cases: list[EdgeCaseStats] = []
        findings: list[Finding] = []
        for name in sorted(set(self._outcomes) | set(self._dropped)):
            spec = self._mix.spec(name)
            expect = spec.expect if spec else _DEFAULT_EXPECT.get(name, frozenset({"4xx"}))
            outcomes = self._outcomes.get(name, Counter())
            cases.append(EdgeCaseStats(name, tuple(sorted(expect)), sum(outcomes.values()),
                                       self._dropped[name], tuple(sorted(outcomes.items()))))
            for got, count in sorted(outcomes.items()):
                if got not in expect:
                    example = self._examples[(name, got)]
                    findings.append(Finding(name, tuple(sorted(expect)), got, count,
                                            example.status, example.error))
        findings.sort(key=lambda f: (not f.severe, f.edge_case, f.got))
        return EdgeCaseReport(tuple(cases), tuple(findings))
