"""Per-response invariants: what one answer must satisfy whatever the load.

A response breaks an invariant when it is not JSON, lacks a required path (schema), holds
NaN/Infinity, has a tensor whose ``shape`` disagrees with its ``data`` (OIP: ``prod(shape)
== len(flat(data))``), or names a model version outside the allowed set. Golden probes
also know their request, so they check the id/nonce echo. Each broken invariant is
counted per window under its category; the checker turns the counts into rate SLIs.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from brownout.experiment.steady import Predictions
from brownout.steady.golden import lenient_json
from faults.jsonpath import JsonPath, compile_path

# Categories of broken invariants (the keys of ``QualityStats.violations``).
SCHEMA, NON_FINITE, SHAPE, MODEL_VERSION, ECHO = "schema", "non_finite", "shape", "model_version", "echo"


@dataclass(frozen=True, slots=True)
class ResponseCheck:
    """What one response body says about validity, and the scores it carries."""

    parsed: bool
    strict_json: bool
    missing_paths: tuple[str, ...]
    non_finite: bool
    scores: tuple[float, ...]
    shape_mismatches: tuple[str, ...] = ()  # one line per tensor whose shape and data disagree
    version: str | None = None
    unexpected_version: bool = False

    @property
    def violations(self) -> tuple[str, ...]:
        """The categories this response breaks (empty: valid)."""
        out = []
        if not self.parsed or self.missing_paths:
            out.append(SCHEMA)
        if self.non_finite:
            out.append(NON_FINITE)
        if self.shape_mismatches:
            out.append(SHAPE)
        if self.unexpected_version:
            out.append(MODEL_VERSION)
        return tuple(out)

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def problem(self) -> str | None:
        if not self.parsed:
            return "not JSON"
        if self.missing_paths:
            return f"missing {', '.join(self.missing_paths)}"
        if self.non_finite:
            return "NaN or Infinity in the response"
        if self.shape_mismatches:
            return self.shape_mismatches[0]
        if self.unexpected_version:
            return f"model version {self.version!r} not allowed" if self.version is not None else "no model version"
        return None


def check_response(body: bytes, required: Sequence[JsonPath], score: JsonPath | None,
                   invariants: Invariants | None = None) -> ResponseCheck:
    try:
        doc, strict = lenient_json(body)
    except (ValueError, UnicodeDecodeError):
        return ResponseCheck(False, False, (), False, ())
    missing = tuple(p.text for p in required if not p.find(doc))
    scores: tuple[float, ...] = ()
    if score is not None:
        scores = tuple(float(v) for v in score.find(doc) if is_number(v) and math.isfinite(v))
    version, unexpected = invariants.version_of(doc) if invariants is not None else (None, False)
    return ResponseCheck(True, strict, missing, not all_finite(doc), scores, shape_mismatches(doc), version, unexpected)


@dataclass(frozen=True)
class Invariants:
    """The experiment's invariants, compiled once."""

    required: tuple[JsonPath, ...] = ()
    score: JsonPath | None = None
    version_path: JsonPath | None = None
    versions: tuple[str, ...] | None = None  # fnmatch patterns; None: any version
    echo_request: JsonPath | None = None
    echo_response: JsonPath | None = None

    @classmethod
    def from_predictions(cls, p: Predictions | None) -> Invariants:
        if p is None:
            return cls()
        return cls(
            required=tuple(compile_path(x) for x in p.required_paths),
            score=compile_path(p.score) if p.score else None,
            version_path=compile_path(p.model_version_path) if p.model_versions is not None else None,
            versions=p.model_versions,
            echo_request=compile_path(p.echo.request) if p.echo is not None else None,
            echo_response=compile_path(p.echo.response) if p.echo is not None else None,
        )

    def check(self, body: bytes) -> ResponseCheck:
        return check_response(body, self.required, self.score, self)

    def version_of(self, doc: Any) -> tuple[str | None, bool]:
        """(the version the response names, whether it is outside the allowed set)."""
        if self.version_path is None or self.versions is None:
            return None, False
        found = self.version_path.find(doc)
        if not found:
            return None, True
        version = str(found[0])
        return version, not any(fnmatch.fnmatchcase(version, pattern) for pattern in self.versions)

    def echo_problem(self, request_body: Any, response_body: bytes | None) -> str | None:
        """Why the response does not echo the request's id (None: it does, or nothing to check).

        A request without the id is not checked; a response that is not JSON is (it echoes nothing).
        """
        if self.echo_request is None or self.echo_response is None:
            return None
        sent = self.echo_request.find(request_body)
        if not sent:
            return None
        try:
            doc, _ = lenient_json(response_body or b"")
        except (ValueError, UnicodeDecodeError):
            return "response is not JSON"
        got = self.echo_response.find(doc)
        if not got:
            return f"{self.echo_response.text} missing (sent {sent[0]!r})"
        if got[0] != sent[0]:
            return f"{self.echo_response.text} = {got[0]!r}, sent {sent[0]!r}"
        return None

    @property
    def checks_echo(self) -> bool:
        return self.echo_request is not None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def all_finite(doc: Any) -> bool:
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return False
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def _leaves(data: list[Any]) -> int:
    count, stack = 0, list(data)
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        else:
            count += 1
    return count


def shape_mismatches(doc: Any) -> tuple[str, ...]:
    """Tensors (objects with a ``shape`` of sizes and a ``data`` list) whose sizes disagree."""
    out: list[str] = []
    stack: list[tuple[str, Any]] = [("$", doc)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            shape, data = node.get("shape"), node.get("data")
            if (isinstance(shape, list) and isinstance(data, list)
                    and all(is_number(d) and float(d).is_integer() and d >= 0 for d in shape)):
                expected = math.prod(int(d) for d in shape)
                got = _leaves(data)
                if expected != got:
                    name = node.get("name")
                    label = f"{where} ({name})" if isinstance(name, str) else where
                    out.append(f"{label}: shape {shape} holds {expected} values, data has {got}")
            stack.extend((f"{where}.{k}", v) for k, v in node.items() if k != "data")
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(node) if isinstance(v, (dict, list)))
    return tuple(sorted(out))
