"""The JSONPath subset used everywhere: ``$.a.b[0].c``, ``$['key with.dot']``, ``$.items[*].score``.

Paths are compiled once into a tuple of steps; a step is a key (str), an index (int) or
the wildcard ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"""\.([A-Za-z_][\w\-]*)|\[(-?\d+)\]|\[\*\]|\.\*|\['([^']*)'\]|\["([^"]*)"\]""")

WILDCARD = "*"
Step = str | int


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    def find(self, doc: Any) -> list[Any]:
        """Every value the path selects (wildcards may select several)."""
        return [value for _, _, value in self._walk(doc)]

    def first(self, doc: Any, default: Any = None) -> Any:
        for _, _, value in self._walk(doc):
            return value
        return default

    def set(self, doc: Any, compute: Any) -> int:
        """Replace each selected value with ``compute(old)``; return how many were changed."""
        changed = 0
        for parent, key, value in list(self._walk(doc)):
            parent[key] = compute(value)
            changed += 1
        return changed

    def remove(self, doc: Any) -> int:
        targets = list(self._walk(doc))
        # Delete list items from the end so earlier indexes stay valid.
        for parent, key, _ in sorted(targets, key=lambda t: t[1] if isinstance(t[1], int) else 0, reverse=True):
            del parent[key]
        return len(targets)

    def _walk(self, doc: Any) -> Iterator[tuple[Any, Step, Any]]:
        if not self.steps:
            return
        yield from _walk(doc, self.steps)


def _walk(node: Any, steps: tuple[Step, ...]) -> Iterator[tuple[Any, Step, Any]]:
    step, rest = steps[0], steps[1:]
    if step == WILDCARD:
        keys: list[Step] = list(range(len(node))) if isinstance(node, list) else list(node) if isinstance(node, dict) else []
    elif isinstance(step, int) and isinstance(node, list) and -len(node) <= step < len(node):
        keys = [step]
    elif isinstance(step, str) and isinstance(node, dict) and step in node:
        keys = [step]
    else:
        return
    for key in keys:
        child = node[key]
        if rest:
            yield from _walk(child, rest)
        else:
            yield node, key, child


def compile_path(text: str) -> JsonPath:
    """Parse ``$.a[0].b``; raise ValueError naming the position of the first bad character."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError(f"JSON path must start with '$': {text!r}")
    steps: list[Step] = []
    pos = 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"bad JSON path {text!r} at character {pos + 1}")
        name, index, quoted1, quoted2 = match.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        elif quoted1 is not None or quoted2 is not None:
            steps.append(quoted1 if quoted1 is not None else quoted2)
        else:
            steps.append(WILDCARD)
        pos = match.end()
    return JsonPath(text, tuple(steps))
