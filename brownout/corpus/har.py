"""HAR 1.2 (browsers, Postman, mitmproxy's ``hardump``) read into exchanges.

Per entry: ``request.method``/``url``/``headers``, ``request.postData.text`` (base64 when
``postData.encoding`` is ``base64``; ``params`` urlencoded when there is no text),
``response.status``/``headers``/``content.text`` (``content.encoding: base64`` likewise),
``startedDateTime`` becomes ``ts`` and ``time`` becomes ``latency_ms``. HAR bodies are
already decoded, so ``Content-Encoding`` headers are dropped; HTTP/2 pseudo-headers
(``:authority``) are dropped too. ``cookies`` arrays are not read (cookies travel in the
headers, which redaction covers). A response with status 0 (the request failed, no answer)
becomes an exchange without a response. Errors name the entry and the field:
``file.har: log.entries[3].request.postData.text: not base64: ...``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from faults.errors import InvalidInput
from proxy.recording import Exchange, RawResponse


def read_har(path: Path) -> Iterator[Exchange]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read: {exc}", source=str(path)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc.msg}", source=str(path), line=exc.lineno, column=exc.colno) from None
    try:
        log = _obj(doc, "log", "")
        entries = log.get("entries")
        if not isinstance(entries, list):
            raise InvalidInput("required: a list of entries", "log.entries")
        for i, entry in enumerate(entries):
            yield _entry(entry, f"log.entries[{i}]")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, exc.field, source=str(path)) from None


def _entry(entry: Any, where: str) -> Exchange:
    if not isinstance(entry, dict):
        raise InvalidInput("must be an object", where)
    request = _obj(entry, "request", where)
    method = _str(request, "method", f"{where}.request")
    if not method.isalpha():
        raise InvalidInput(f"not an HTTP method: {method!r}", f"{where}.request.method")
    headers = _headers(request, f"{where}.request")
    body = _post_data(request, headers, f"{where}.request")
    response = _obj(entry, "response", where)
    status = response.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not (status == 0 or 100 <= status <= 599):
        raise InvalidInput(f"must be an HTTP status, got {status!r}", f"{where}.response.status")
    elapsed = entry.get("time")
    if elapsed is not None and (isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not math.isfinite(elapsed)):
        raise InvalidInput(f"must be milliseconds, got {elapsed!r}", f"{where}.time")
    answer = None
    if status:
        answer = RawResponse(
            status, _headers(response, f"{where}.response"), _content(response, f"{where}.response"),
            float(elapsed) if elapsed is not None and elapsed >= 0 else None,
        )
    return Exchange(
        method, _path(_str(request, "url", f"{where}.request"), f"{where}.request.url"), headers, body,
        _started(entry, where), (), answer,
    )


def _path(url: str, field: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"not a URL: {exc}", field) from None
    if not parts.scheme and not url.startswith("/"):
        raise InvalidInput(f"not an absolute URL: {url!r}", field)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return path.replace(" ", "%20")


def _headers(message: dict[str, Any], where: str) -> list[tuple[str, str]]:
    value = message.get("headers", [])
    if not isinstance(value, list):
        raise InvalidInput("must be a list of {name, value}", f"{where}.headers")
    out = []
    for i, item in enumerate(value):
        field = f"{where}.headers[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput("must be an object with name and value", field)
        name, text = _str(item, "name", field), _str(item, "value", field)
        if name.startswith(":") or name.lower() == "content-encoding":
            continue  # HTTP/2 pseudo-headers; HAR bodies are stored decoded
        if any(c in text for c in "\r\n"):
            raise InvalidInput("a header value must be on one line", f"{field}.value")
        out.append((name, text))
    return out


def _post_data(request: dict[str, Any], headers: list[tuple[str, str]], where: str) -> bytes:
    post = request.get("postData")
    if post is None:
        return b""
    if not isinstance(post, dict):
        raise InvalidInput("must be an object", f"{where}.postData")
    where = f"{where}.postData"
    mime = post.get("mimeType")
    if mime and isinstance(mime, str) and not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(("Content-Type", mime))
    if post.get("text") is None and post.get("params"):
        return _params(post["params"], f"{where}.params")
    return _text(post, where, "text")


def _content(response: dict[str, Any], where: str) -> bytes:
    content = response.get("content")
    if content is None:
        return b""
    if not isinstance(content, dict):
        raise InvalidInput("must be an object", f"{where}.content")
    return _text(content, f"{where}.content", "text")


def _text(obj: dict[str, Any], where: str, key: str) -> bytes:
    text = obj.get(key)
    if text is None:
        return b""
    if not isinstance(text, str):
        raise InvalidInput("must be a string", f"{where}.{key}")
    encoding = obj.get("encoding")
    if encoding is None or encoding == "":
        return text.encode("utf-8", "replace")  # a lone surrogate is broken data already
    if encoding != "base64":
        raise InvalidInput(f"unknown encoding {encoding!r} (HAR knows base64)", f"{where}.encoding")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"not base64: {exc}", f"{where}.{key}") from None


def _params(params: Any, where: str) -> bytes:
    if not isinstance(params, list):
        raise InvalidInput("must be a list of {name, value}", where)
    pairs = []
    for i, item in enumerate(params):
        if not isinstance(item, dict):
            raise InvalidInput("must be an object with name and value", f"{where}[{i}]")
        pairs.append((_str(item, "name", f"{where}[{i}]"), str(item.get("value", ""))))
    return urlencode(pairs).encode()


def _started(entry: dict[str, Any], where: str) -> float | None:
    text = entry.get("startedDateTime")
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput("must be an ISO 8601 date-time", f"{where}.startedDateTime")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"not an ISO 8601 date-time: {text!r}", f"{where}.startedDateTime") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _obj(parent: Any, key: str, where: str) -> dict[str, Any]:
    field = f"{where}.{key}" if where else key
    if not isinstance(parent, dict):
        raise InvalidInput("must be an object", where or None)
    value = parent.get(key)
    if not isinstance(value, dict):
        raise InvalidInput("required: an object" if value is None else "must be an object", field)
    return value


def _str(parent: dict[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str):
        raise InvalidInput("required: a string" if value is None else f"must be a string, got {value!r}", f"{where}.{key}")
    return value
