"""schema_drift: a field renamed or dropped, or its data type changed, in a 200 response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from faults.base import require
from faults.exchange import Exchange
from faults.json_ops import change_type
from faults.jsonpath import JsonPath, compile_path
from faults.ml.feast import FeastTable
from faults.ml.jsonbody import JsonResponseFault, same
from faults.ml.protocols import Protocol, Role, check_paths, default_paths
from faults.ml.tensors import is_number, oip_outputs, slots

_NUMERIC_DTYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                             "FP16", "FP32", "FP64"})


@dataclass(frozen=True)
class SchemaDriftFault(JsonResponseFault):
    """Drift the response schema: rename or drop a field, or change a data type (FP32 → BYTES, number → string).

    Why realistic: renamed or re-typed fields are the classic "unstable data dependency"
    (Sculley et al.); MLflow 2.0 itself changed its scoring protocol; clients either crash
    with a KeyError or silently ignore the field.
    ``mode``: ``rename`` (an object key gets ``new_name``; a string in a list, such as a
    Feast feature name, and by default an OIP output tensor's name, is replaced by it), ``drop`` (the field removed) or
    ``dtype`` (values re-typed: numbers become strings; OIP tensors get ``datatype`` and,
    when it is ``BYTES``, string data). ``path``: the field (default per protocol: OIP
    ``outputs[*].name``, TF Serving / MLflow ``predictions``, OpenAI chat
    ``choices[*].message.content``, completions ``choices[*].text``, embeddings
    ``data[*].embedding``, Feast the first non-key feature). ``new_name``: default the old
    name plus ``_v2``. ``datatype``: the OIP datatype written in ``dtype`` mode (default
    ``BYTES``). Unchanged bodies pass byte for byte.
    """

    kind = "schema_drift"

    mode: Literal["rename", "drop", "dtype"] = "rename"
    path: str | None = None
    new_name: str | None = None
    datatype: str = "BYTES"

    def validate(self) -> None:
        check_paths((self.path,) if self.path is not None else (), "path")
        require(self.new_name is None or self.mode == "rename", "new_name", "only applies to mode 'rename'")
        require(self.new_name is None or bool(self.new_name), "new_name", "must not be empty")
        require(self.datatype == "BYTES" or self.datatype in _NUMERIC_DTYPES, "datatype",
                f"must be an OIP datatype, got {self.datatype!r}")

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        if self.mode == "dtype" and protocol == Protocol.OIP and self.path is None:
            return sum(self._retype_tensor(t) for t in oip_outputs(doc, ()))
        paths = self._paths(doc, protocol)
        if self.mode == "drop":
            return sum(p.remove(doc) for p in paths)
        # OIP by default: the output tensor's *name* changes (its "name" key stays).
        rename_values = protocol == Protocol.OIP and self.path is None
        changed = 0
        for path in paths:
            for parent, key in slots(path, doc):
                if self.mode == "rename":
                    changed += self._rename(parent, key, rename_values)
                else:
                    changed += self._retype(parent, key)
        return changed

    def _paths(self, doc: Any, protocol: Protocol) -> tuple[JsonPath, ...]:
        if self.path is not None:
            return (compile_path(self.path),)
        if protocol == Protocol.FEAST and self.mode != "dtype":
            table = FeastTable.of(doc)
            keys = table.feature_indexes(()) if table else []
            return (compile_path(f"$.metadata.feature_names[{keys[0]}]"),) if keys else ()
        return default_paths(protocol, Role.DTYPE if self.mode == "dtype" else Role.FIELD)

    def _rename(self, parent: Any, key: Any, rename_values: bool) -> int:
        if isinstance(parent, dict) and not rename_values:
            new_key = self.new_name or f"{key}_v2"
            if new_key == key:
                return 0
            items = [(new_key if k == key else k, v) for k, v in parent.items()]
            parent.clear()
            parent.update(items)  # same position, new name
            return 1
        value = parent[key]
        if isinstance(value, str):
            parent[key] = self.new_name or f"{value}_v2"
            return int(parent[key] != value)
        return 0

    def _retype(self, parent: Any, key: Any) -> int:
        old = parent[key]
        parent[key] = _stringify(old) if isinstance(old, list) else change_type(old)
        return int(not same(old, parent[key]))

    def _retype_tensor(self, tensor: dict[str, Any]) -> int:
        changed = 0
        if tensor.get("datatype") != self.datatype:
            tensor["datatype"] = self.datatype
            changed += 1
        if self.datatype == "BYTES" and isinstance(tensor.get("data"), list):
            tensor["data"] = _stringify(tensor["data"])
            changed += 1
        return changed


def _stringify(value: Any) -> Any:
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return change_type(value) if is_number(value) else value
