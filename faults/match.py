"""Which requests a fault applies to. Decided once per request, reused for every phase."""

from __future__ import annotations

import fnmatch
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict

from faults.exchange import NO_JSON
from faults.jsonpath import JsonPath, compile_path



@dataclass(frozen=True)
class BodyPredicate:
    """A JSON-body test: the value at ``path`` equals ``equals`` or contains ``contains``."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    path: str
    equals: Any = None
    contains: Any = None
    _compiled: JsonPath = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.equals is None and self.contains is None:
            raise ValueError("equals: give 'equals' or 'contains'")
        try:
            object.__setattr__(self, "_compiled", compile_path(self.path))
        except ValueError as exc:
            raise ValueError(f"path: {exc}") from None

    def test(self, doc: Any) -> bool:
        for value in self._compiled.find(doc):
            if self.equals is not None and value == self.equals:
                return True
            if self.contains is not None and isinstance(value, (str, list, dict)) and self.contains in value:
                return True
        return False


@dataclass(frozen=True)
class Match:
    """All conditions are optional; a request matches when every given one holds.

    ``methods`` (any of), ``path`` (glob, ``*`` crosses ``/``), ``headers`` (name → glob on
    the value), ``body`` (JSON predicate), then per matching request: ``first_n`` (only the
    first N), ``every_nth`` (the Nth, 2Nth, …), ``max_injections`` (stop after N),
    ``probability`` (drawn from the fault's seeded rng).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    methods: tuple[str, ...] | None = None
    path: str | None = None
    headers: Mapping[str, str] | None = None
    body: BodyPredicate | None = None
    probability: float = 1.0
    first_n: int | None = None
    every_nth: int | None = None
    max_injections: int | None = None
    _path_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _header_res: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability: must be between 0 and 1, got {self.probability}")
        for name in ("first_n", "every_nth", "max_injections"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))
        if self.path is not None:
            object.__setattr__(self, "_path_re", re.compile(fnmatch.translate(self.path)))
        if self.headers:
            compiled = tuple((k.lower(), re.compile(fnmatch.translate(v))) for k, v in self.headers.items())
            object.__setattr__(self, "_header_res", compiled)

    @property
    def needs_body(self) -> bool:
        return self.body is not None

    def matches_request(self, method: str, path: str, headers: Mapping[str, str], json_body: Any = NO_JSON) -> bool:
        """The static part: does this request look like one the fault targets?"""
        if self.methods is not None and method not in self.methods:
            return False
        if self._path_re is not None and not self._path_re.match(path):
            return False
        for name, pattern in self._header_res:
            value = headers.get(name)
            if value is None or not pattern.match(value):
                return False
        if self.body is not None:
            return json_body is not NO_JSON and self.body.test(json_body)
        return True

    def decide(self, seen: int, injected: int, rng: random.Random) -> bool:
        """The counting part, for the ``seen``-th matching request (1-based)."""
        if self.first_n is not None and seen > self.first_n:
            return False
        if self.every_nth is not None and seen % self.every_nth:
            return False
        if self.max_injections is not None and injected >= self.max_injections:
            return False
        return self.probability >= 1.0 or rng.random() < self.probability

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("methods", "path", "headers", "probability", "first_n", "every_nth", "max_injections"):
            value = getattr(self, name)
            if value is not None and not (name == "probability" and value == 1.0):
                out[name] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
        if self.body is not None:
            out["body"] = {k: v for k, v in (("path", self.body.path), ("equals", self.body.equals), ("contains", self.body.contains)) if v is not None}
        return out


MATCH_ALL = Match()
