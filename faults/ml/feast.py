"""A view of a Feast ``get-online-features`` response as cells (feature × entity row).

Feast has shipped both orientations: row-oriented (``results[r].values[f]``)
and column-oriented (``results[f].values[r]``, the current serving model). The current one is
recognised by ``len(results) == len(feature_names)``. Join keys (whose timestamps are all the
epoch, as Feast writes them) are left alone unless named explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRESENT = "PRESENT"
NULL_VALUE = "NULL_VALUE"
NOT_FOUND = "NOT_FOUND"
OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"
_EPOCH = ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00", "1970-01-01T00:00:00+00:00", 0)
COLUMNS = ("values", "statuses", "event_timestamps")


@dataclass(frozen=True, slots=True)
class Cell:
    feature: int
    row: int


class FeastTable:
    """Mutable accessors over one parsed response (``doc`` is edited in place)."""

    def __init__(self, doc: dict[str, Any], names: list[Any], results: list[dict[str, Any]]) -> None:
        self.doc = doc
        self.names = names
        self.results = results
        self.by_column = len(results) == len(names)

    @classmethod
    def of(cls, doc: Any) -> FeastTable | None:
        if not isinstance(doc, dict):
            return None
        meta, results = doc.get("metadata"), doc.get("results")
        if not isinstance(meta, dict) or not isinstance(meta.get("feature_names"), list) or not isinstance(results, list):
            return None
        if not all(isinstance(r, dict) and isinstance(r.get("values"), list) for r in results):
            return None
        return cls(doc, meta["feature_names"], results)

    @property
    def rows(self) -> int:
        if self.by_column:
            return len(self.results[0]["values"]) if self.results else 0
        return len(self.results)

    def _slot(self, cell: Cell, column: str) -> tuple[list[Any], int] | None:
        result = self.results[cell.feature] if self.by_column else self.results[cell.row]
        seq = result.get(column)
        index = cell.row if self.by_column else cell.feature
        if isinstance(seq, list) and index < len(seq):
            return seq, index
        return None

    def get(self, cell: Cell, column: str, default: Any = None) -> Any:
        slot = self._slot(cell, column)
        return slot[0][slot[1]] if slot else default

    def set(self, cell: Cell, column: str, value: Any) -> bool:
        """Set one cell's value/status/timestamp; True when it really changed."""
        slot = self._slot(cell, column)
        if slot is None:
            return False
        seq, index = slot
        old = seq[index]
        seq[index] = value
        return not (old is value or (type(old) is type(value) and old == value))

    def is_join_key(self, feature: int) -> bool:
        stamps = [self.get(Cell(feature, r), "event_timestamps", None) for r in range(self.rows)]
        return bool(stamps) and all(s in _EPOCH for s in stamps)

    def feature_indexes(self, wanted: tuple[str, ...]) -> list[int]:
        """Indexes of the features named in ``wanted`` (``view:name`` or ``name``), else every non-key one."""
        if wanted:
            short = {w.split(":")[-1] for w in wanted} | set(wanted)
            return [i for i, n in enumerate(self.names) if str(n) in short or str(n).split(":")[-1] in short]
        return [i for i in range(len(self.names)) if not self.is_join_key(i)]

    def cells(self, wanted: tuple[str, ...]) -> list[Cell]:
        return [Cell(f, r) for f in self.feature_indexes(wanted) for r in range(self.rows)]

    def drop_feature(self, feature: int) -> None:
        """Remove a feature everywhere: its name and its value/status/timestamp in every row."""
        del self.names[feature]
        if self.by_column:
            del self.results[feature]
            return
        for result in self.results:
            for column in COLUMNS:
                seq = result.get(column)
                if isinstance(seq, list) and feature < len(seq):
                    del seq[feature]
