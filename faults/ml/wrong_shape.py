"""wrong_shape: outputs whose size disagrees — truncated, extended, or with a lying shape."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from faults.base import require
from faults.exchange import Exchange
from faults.ml.jsonbody import JsonResponseFault
from faults.ml.protocols import Protocol, Role, check_paths, resolve
from faults.ml.tensors import oip_outputs, slots


@dataclass(frozen=True)
class WrongShapeFault(JsonResponseFault):
    """Break the shape of outputs: fewer or more elements than promised, or a ``shape`` that lies.

    Why realistic: OIP requires ``shape`` and ``data`` to agree; a dropped batch dimension or
    a changed embedding size gives index errors or, worse, silently misaligned rows ↔
    predictions.
    ``mode``: ``truncate`` (the last ``count`` elements removed: fewer predictions than
    inputs, a shorter embedding), ``extend`` (the last element repeated ``count`` times),
    ``shape`` (OIP: ``shape[0]`` grows by ``count`` while ``data`` stays; other shapes: the
    batch dimension is dropped, ``[[a, b], [c, d]]`` → ``[a, b, c, d]``). ``count``: how
    many elements (default 1). ``outputs``: OIP output tensor names to hit (default all).
    ``paths``: JSON paths of the lists for other shapes (defaults: TF Serving / MLflow
    ``predictions``, OpenAI embeddings ``data[*].embedding``, Feast ``results``).
    Unchanged bodies pass byte for byte.
    """

    kind = "wrong_shape"

    mode: Literal["truncate", "extend", "shape"] = "truncate"
    count: int = 1
    outputs: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def validate(self) -> None:
        require(self.count >= 1, "count", f"must be >= 1, got {self.count}")
        check_paths(self.paths, "paths")

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        if protocol == Protocol.OIP and not self.paths:
            return sum(self._tensor(t) for t in oip_outputs(doc, self.outputs))
        changed = 0
        for path in resolve(self.paths, protocol, Role.ROWS):
            for parent, key in slots(path, doc):
                if isinstance(parent[key], list):
                    new = self._list(parent[key])
                    changed += new != parent[key]
                    parent[key] = new
        return changed

    def _tensor(self, tensor: dict[str, Any]) -> int:
        if self.mode == "shape":
            shape = tensor.get("shape")
            if not isinstance(shape, list) or not shape or not isinstance(shape[0], int):
                return 0
            tensor["shape"] = [shape[0] + self.count, *shape[1:]]
            return 1
        data = tensor.get("data")
        if not isinstance(data, list):
            return 0
        new = self._list(data)
        tensor["data"] = new
        return int(new != data)

    def _list(self, items: list[Any]) -> list[Any]:
        if not items:
            return items
        match self.mode:
            case "truncate":
                return items[:max(0, len(items) - self.count)]
            case "extend":
                return items + [copy.deepcopy(items[-1]) for _ in range(self.count)]
            case _:
                return [v for row in items for v in (row if isinstance(row, list) else [row])]
