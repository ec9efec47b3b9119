"""error: answer with an error status without (or instead of) upstream's answer."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from typing import Any, Literal

from faults.base import PROCEED, Fault, Hook, Outcome, Respond, require
from faults.exchange import Exchange

# RFC 9110 token characters: what a header name may contain.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# The proxy frames the body itself; a fault must not fake the framing.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


def error_body(status: int) -> bytes:
    """The small JSON body Brownout answers with when the user gave none."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "injected error"
    return json.dumps({"error": reason, "injected_by": "brownout"}).encode()


def error_response(status: int, headers: tuple[tuple[str, str], ...] = ()) -> Respond:
    """A default JSON error answer (also used by ``hang`` and ``down``)."""
    return Respond(status, error_body(status), (("Content-Type", "application/json"), *headers))


def check_headers(headers: Mapping[str, Any], name: str) -> None:
    for key, value in headers.items():
        require(isinstance(value, (str, int, float)) and not isinstance(value, bool), name,
                f"value of {key!r} must be a string or a number")
        require(bool(_TOKEN.match(key)), name, f"{key!r} is not a valid header name")
        require(key.lower() not in _FRAMING, name, f"{key!r} is set by the proxy, not by a fault")
        require(not any(c in str(value) for c in "\r\n\0"), name, f"value of {key!r} must not contain CR, LF or NUL")


@dataclass(frozen=True)
class ErrorFault(Fault):
    """Answer with an error (by default 503 and a small JSON body) instead of upstream's answer.

    ``status``: the status code (200-599; a 200 with an error body is a real-world failure too).
    ``body``: the body: text, or a JSON object/list (sent as JSON); default
    ``{"error": "<reason phrase>", "injected_by": "brownout"}``.
    ``content_type``: default ``application/json`` when the body is JSON (or the default),
    ``text/plain; charset=utf-8`` otherwise. ``headers``: extra response headers, e.g.
    ``{"Retry-After": 5}``. ``phase``: ``request`` answers without contacting upstream;
    ``response`` lets the request reach upstream (side effects happen) and replaces its answer.
    """

    kind = "error"

    status: int = 503
    # Plain Any, checked in validate(): a pydantic union would report one error per member.
    body: Any = None
    content_type: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    phase: Literal["request", "response"] = "request"

    def validate(self) -> None:
        require(200 <= self.status <= 599, "status", f"must be between 200 and 599, got {self.status}")
        require(self.body is None or isinstance(self.body, (str, dict, list)), "body", "must be text or a JSON object or list")
        require(self.content_type is None or bool(self.content_type.strip()), "content_type", "must not be empty")
        require(self.content_type is None or not any(c in self.content_type for c in "\r\n\0"),
                "content_type", "must not contain CR, LF or NUL")
        check_headers(self.headers, "headers")

    @cached_property
    def response(self) -> Respond:
        """Built once per fault: the answer is the same for every request."""
        if self.body is None:
            body, content_type = error_body(self.status), "application/json"
        elif not isinstance(self.body, str):
            body, content_type = json.dumps(self.body).encode(), "application/json"
        else:
            body, content_type = self.body.encode(), text_content_type(self.body)
        given = [str(v) for k, v in self.headers.items() if k.lower() == "content-type"]
        extra = tuple((k, str(v)) for k, v in self.headers.items() if k.lower() != "content-type")
        content_type = self.content_type or (given[0] if given else content_type)
        return Respond(self.status, body, (("Content-Type", content_type), *extra))

    def hooks(self) -> frozenset[Hook]:
        return frozenset({Hook.ON_REQUEST if self.phase == "request" else Hook.ON_RESPONSE})

    def answer(self, ex: Exchange) -> Outcome:
        ex.report(status=self.status)
        return self.response

    async def on_request(self, ex: Exchange) -> Outcome:
        return self.answer(ex) if self.phase == "request" else PROCEED

    async def on_response(self, ex: Exchange) -> Outcome:
        return self.answer(ex) if self.phase == "response" else PROCEED


def text_content_type(text: str) -> str:
    """The media type of a custom body given as text: JSON when it parses as JSON, else plain text."""
    try:
        json.loads(text)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"
