"""How capacity refusals look on the wire: the bodies and headers real servers send when full.

Overload (``concurrency_limit``): Anthropic answers 529 ``overloaded_error``; OpenAI-compatible
servers 503 with an OpenAI error object; Triton 503 with ``{"error": "..."}``; anything else
a plain 503 JSON. Rate limits (``rate_limit``): OpenAI's 429 error object and its
``x-ratelimit-*`` headers, whose reset times read as Go durations (``1s``, ``6m0s``, ``20ms``).
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from faults.base import Respond

Style = Literal["auto", "anthropic", "openai", "triton", "plain"]
_JSON = ("Content-Type", "application/json")

_OVERLOAD_MESSAGES = {  # reason → (OpenAI/Anthropic/plain message, Triton's own wording)
    "queue_full": ("The server is overloaded: its request queue is full.", "Exceeds maximum queue size"),
    "queue_timeout": ("The server is overloaded: the request waited too long in its queue.", "Request timeout expired"),
}


def pick_style(style: Style, path: str) -> Style:
    """``auto``: by the request path (Anthropic messages, OpenAI completions, Triton/KServe v2)."""
    if style != "auto":
        return style
    path = path.rstrip("/")
    if path.endswith("/v1/messages"):
        return "anthropic"
    if path.endswith(("/v1/chat/completions", "/v1/completions")):
        return "openai"
    if path.startswith("/v2/models/") or "/v2/models/" in path:
        return "triton"
    return "plain"


def overload_response(style: Style, reason: str, retry_after_s: int | None) -> Respond:
    """The answer of a server that cannot take the request now (``style`` already picked)."""
    message, triton_message = _OVERLOAD_MESSAGES[reason]
    status = 503
    doc: dict[str, Any]
    match style:
        case "anthropic":
            status = 529
            doc = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        case "openai":
            doc = {"error": {"message": message, "type": "server_error", "param": None, "code": "server_overloaded"}}
        case "triton":
            doc = {"error": triton_message}
        case _:
            doc = {"error": "Service Unavailable", "reason": reason, "message": message, "injected_by": "brownout"}
    headers: tuple[tuple[str, str], ...] = (_JSON,)
    if retry_after_s is not None:
        headers += (("Retry-After", str(retry_after_s)),)
    return Respond(status, json.dumps(doc).encode(), headers)


def rate_limit_body(limit: str, per_minute: float, requested: float, wait_s: float) -> bytes:
    """OpenAI's 429 error object (``type`` is the limit: ``requests`` or ``tokens``)."""
    unit = "requests per min (RPM)" if limit == "requests" else "tokens per min (TPM)"
    message = (f"Rate limit reached on {unit}: Limit {per_minute:g}, Requested {requested:g}. "
               f"Please try again in {go_duration(wait_s)}. (injected by brownout)")
    return json.dumps({"error": {"message": message, "type": limit, "param": None,
                                 "code": "rate_limit_exceeded"}}).encode()


def retry_after_s(wait_s: float) -> int:
    """``Retry-After`` in whole seconds, rounded up: a client that waits that long finds room."""
    return max(1, math.ceil(wait_s - 1e-9))


def go_duration(seconds: float) -> str:
    """``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``: how OpenAI writes ``x-ratelimit-reset-*``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 1000) / 1000:g}s"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
