"""Which ML wire protocol a body speaks, and where its interesting values live.

Detection uses the request path first and the body's keys second; anything
unrecognised is ``GENERIC`` and relies on the user's ``paths``. Each protocol names default
JSON paths for a few *roles*: the scores/outputs, the model version, the features.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from faults.jsonpath import JsonPath, compile_path


class Protocol(StrEnum):
    OIP = "oip"                  # Open Inference Protocol v2 (KServe, Triton, MLServer)
    TF_SERVING = "tf_serving"    # TF Serving / KServe v1 :predict
    MLFLOW = "mlflow"            # MLflow /invocations
    OPENAI_CHAT = "openai_chat"
    OPENAI_COMPLETIONS = "openai_completions"
    OPENAI_EMBEDDINGS = "openai_embeddings"
    FEAST = "feast"              # Feast feature server get-online-features
    GENERIC = "generic"


class Role(StrEnum):
    SCORES = "scores"      # numeric model outputs (tensors, predictions, embeddings)
    VERSION = "version"    # the field that names the model version
    FIELD = "field"        # the field schema drift renames or drops by default
    DTYPE = "dtype"        # the values schema drift re-types by default
    ROWS = "rows"          # the list whose length is the batch (wrong_shape)


_PATH_RULES: tuple[tuple[re.Pattern[str], Protocol], ...] = (
    (re.compile(r"^(?:.*/)?v2/models/[^/]+(?:/versions/[^/]+)?/infer$"), Protocol.OIP),
    (re.compile(r"^(?:.*/)?v1/models/[^/]+(?:/versions/[^/]+|/labels/[^/]+)?:(?:predict|classify|regress)$"),
     Protocol.TF_SERVING),
    (re.compile(r"^(?:.*/)?invocations$"), Protocol.MLFLOW),
    (re.compile(r"^(?:.*/)?v1/chat/completions$"), Protocol.OPENAI_CHAT),
    (re.compile(r"^(?:.*/)?v1/completions$"), Protocol.OPENAI_COMPLETIONS),
    (re.compile(r"^(?:.*/)?v1/embeddings$"), Protocol.OPENAI_EMBEDDINGS),
    (re.compile(r"^(?:.*/)?get-online-features$"), Protocol.FEAST),
)

_DEFAULTS: dict[Protocol, dict[Role, tuple[str, ...]]] = {
    Protocol.OIP: {
        Role.SCORES: ("$.outputs[*].data",), Role.VERSION: ("$.model_version",),
        Role.FIELD: ("$.outputs[*].name",), Role.DTYPE: ("$.outputs[*].data",), Role.ROWS: ("$.outputs[*].data",),
    },
    Protocol.TF_SERVING: {
        Role.SCORES: ("$.predictions", "$.outputs"), Role.VERSION: ("$.model_version",),
        Role.FIELD: ("$.predictions",), Role.DTYPE: ("$.predictions",), Role.ROWS: ("$.predictions",),
    },
    Protocol.MLFLOW: {
        Role.SCORES: ("$.predictions",), Role.VERSION: ("$.model_version",),
        Role.FIELD: ("$.predictions",), Role.DTYPE: ("$.predictions",), Role.ROWS: ("$.predictions",),
    },
    Protocol.OPENAI_CHAT: {
        Role.SCORES: ("$.choices[*].logprobs.content[*].logprob",), Role.VERSION: ("$.model",),
        Role.FIELD: ("$.choices[*].message.content",), Role.DTYPE: ("$.usage.total_tokens",),
        Role.ROWS: ("$.choices",),
    },
    Protocol.OPENAI_COMPLETIONS: {
        Role.SCORES: ("$.choices[*].logprobs.token_logprobs",), Role.VERSION: ("$.model",),
        Role.FIELD: ("$.choices[*].text",), Role.DTYPE: ("$.usage.total_tokens",), Role.ROWS: ("$.choices",),
    },
    Protocol.OPENAI_EMBEDDINGS: {
        Role.SCORES: ("$.data[*].embedding",), Role.VERSION: ("$.model",),
        Role.FIELD: ("$.data[*].embedding",), Role.DTYPE: ("$.data[*].embedding",), Role.ROWS: ("$.data[*].embedding",),
    },
    Protocol.FEAST: {
        Role.SCORES: ("$.results[*].values",), Role.VERSION: ("$.model_version",),
        Role.FIELD: ("$.metadata.feature_names[*]",), Role.DTYPE: ("$.results[*].values",), Role.ROWS: ("$.results",),
    },
    Protocol.GENERIC: {
        Role.SCORES: ("$.predictions", "$.scores", "$.score", "$.outputs"),
        Role.VERSION: ("$.model_version", "$.version"),
        Role.FIELD: ("$.predictions",), Role.DTYPE: ("$.predictions",), Role.ROWS: ("$.predictions",),
    },
}


def detect(path: str, doc: Any = None) -> Protocol:
    """The protocol of a request path (first) or a response body's keys (second)."""
    for pattern, protocol in _PATH_RULES:
        if pattern.match(path):
            return protocol
    return _from_body(doc)


def _from_body(doc: Any) -> Protocol:
    if not isinstance(doc, dict):
        return Protocol.GENERIC
    outputs = doc.get("outputs")
    if isinstance(outputs, list) and outputs and all(isinstance(o, dict) and "data" in o for o in outputs):
        return Protocol.OIP
    if isinstance(doc.get("results"), list) and isinstance(doc.get("metadata"), dict) \
            and "feature_names" in doc["metadata"]:
        return Protocol.FEAST
    if doc.get("object") == "list" and isinstance(doc.get("data"), list):
        return Protocol.OPENAI_EMBEDDINGS
    if isinstance(doc.get("choices"), list):
        obj = str(doc.get("object", ""))
        return Protocol.OPENAI_COMPLETIONS if obj.startswith("text_completion") else Protocol.OPENAI_CHAT
    if "predictions" in doc:
        return Protocol.TF_SERVING
    return Protocol.GENERIC


def default_paths(protocol: Protocol, role: Role) -> tuple[JsonPath, ...]:
    return tuple(compile_path(p) for p in _DEFAULTS[protocol][role])


def resolve(user_paths: tuple[str, ...], protocol: Protocol, role: Role) -> tuple[JsonPath, ...]:
    """User-given paths win; otherwise the protocol's defaults for ``role``."""
    if user_paths:
        return tuple(compile_path(p) for p in user_paths)
    return default_paths(protocol, role)


def check_paths(paths: tuple[str, ...], field: str) -> None:
    """Validation helper: every user path must compile (raises ValueError naming ``field``)."""
    for text in paths:
        try:
            compiled = compile_path(text)
        except ValueError as exc:
            raise ValueError(f"{field}: {exc}") from None
        if not compiled.steps:
            raise ValueError(f"{field}: {text!r} must select something below '$'")
