"""GoReplay ``.gor`` files (``gor --output-file``, optionally ``.gz``) read into exchanges.

The file is a sequence of payloads, each followed by the separator line ``🐵🙈🙉``
(``\\n🐵🙈🙉\\n`` between payloads). A payload is a header line, then a raw HTTP message:

    1 <id> <start, Unix ns>\\n<raw request>                 a request
    2 <id> <start, Unix ns> <latency, ns>\\n<raw response>  the original response (--input-raw-track-response)
    3 <id> <timestamp> <latency>\\n<raw response>           a replayed response (--output-http-track-response)

Responses are paired with their request by id; the request's start becomes ``ts`` and the
original response's latency ``latency_ms``. Replayed responses (type 3) are not what the
recorded client got, so they are counted and left out, as are responses whose request is
not in the file. Bodies are framed by ``Transfer-Encoding: chunked`` (de-chunked here) or
``Content-Length``. Errors name the payload, its line and the part:
``file.gor:17: payloads[3].body: Content-Length is 120 but 64 bytes follow``.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from faults.errors import InvalidInput
from proxy.recording import Exchange, RawResponse

SEPARATOR = "\n🐵🙈🙉\n".encode()
REQUEST, RESPONSE, REPLAYED = b"1", b"2", b"3"


class _Bad(Exception):
    def __init__(self, part: str, message: str) -> None:
        self.part, self.message = part, message


def read_gor(path: Path, notes: Counter[str] | None = None) -> list[Exchange]:
    """Every request of the file in order, each with its original response when recorded."""
    notes = notes if notes is not None else Counter()
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInput(f"cannot read: {exc}", source=str(path)) from None
    requests: dict[bytes, tuple[float, str, str, list[tuple[str, str]], bytes]] = {}
    order: list[bytes] = []
    responses: dict[bytes, RawResponse] = {}
    for index, line, payload in _payloads(data, path):
        try:
            kind, pid, ts, latency, raw = _header(payload)
            if kind == REQUEST:
                if pid in requests:
                    raise _Bad("header", f"a second request with id {pid.decode(errors='replace')}")
                method, target, headers, body = _request(raw)
                requests[pid] = (ts, method, target, headers, body)
                order.append(pid)
            elif kind == RESPONSE:
                status, headers, body = _response(raw)
                if pid in responses:
                    notes["second responses to one request ignored"] += 1
                    continue
                responses[pid] = RawResponse(status, headers, body, latency / 1e6 if latency is not None else None)
            else:
                notes["replayed responses (type 3) ignored"] += 1
        except _Bad as bad:
            raise InvalidInput(bad.message, f"payloads[{index}].{bad.part}", source=str(path), line=line) from None
    exchanges = []
    for pid in order:
        ts, method, target, headers, body = requests[pid]
        exchanges.append(Exchange(method, target, headers, body, ts / 1e9, (), responses.pop(pid, None)))
    if responses:
        notes["responses without their request ignored"] += len(responses)
    return exchanges


def _payloads(data: bytes, path: Path) -> list[tuple[int, int, bytes]]:
    """``(index, line number, payload)`` for each payload; an unterminated last one is an error."""
    out = []
    pos, line = 0, 1
    while pos < len(data):
        end = data.find(SEPARATOR, pos)
        if end < 0:
            if data[pos:].strip():
                raise InvalidInput(
                    "the last payload is not followed by the 🐵🙈🙉 separator line (a truncated file?)",
                    f"payloads[{len(out)}]", source=str(path), line=line,
                )
            break
        out.append((len(out), line, data[pos:end]))
        line += data.count(b"\n", pos, end + len(SEPARATOR))
        pos = end + len(SEPARATOR)
    return out


def _header(payload: bytes) -> tuple[bytes, bytes, int, int | None, bytes]:
    head, newline, raw = payload.partition(b"\n")
    meta = head.split(b" ")
    if not newline or len(meta) < 3 or meta[0] not in (REQUEST, RESPONSE, REPLAYED) or not meta[1]:
        raise _Bad("header", f"expected 'type id timestamp [latency]' with type 1, 2 or 3, got {head[:80]!r}")
    try:
        ts = int(meta[2])
        latency = int(meta[3]) if len(meta) > 3 and meta[3] else None
    except ValueError:
        raise _Bad("header", f"timestamp and latency must be integers (ns), got {head[:80]!r}") from None
    return meta[0], meta[1], ts, latency, raw


def _request(raw: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    first, headers, body = _message(raw)
    parts = first.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
        raise _Bad("request_line", f"expected 'METHOD /path HTTP/1.1', got {first[:80]!r}")
    target = parts[1]
    if not target.startswith("/"):  # absolute form, as sent to a proxy
        split = urlsplit(target)
        if not split.scheme:
            raise _Bad("request_line", f"not a request target: {target[:80]!r}")
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    return parts[0].upper(), target, headers, _body(headers, body, request=True)


def _response(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    first, headers, body = _message(raw)
    parts = first.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or not 100 <= int(parts[1]) <= 599:
        raise _Bad("status_line", f"expected 'HTTP/1.1 200 OK', got {first[:80]!r}")
    return int(parts[1]), headers, _body(headers, body, request=False)


def _message(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    if not sep:
        raise _Bad("headers", "no blank line ends the headers")
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    headers = []
    for text in lines[1:]:
        name, colon, value = text.partition(":")
        if not colon or not name or name != name.strip():
            raise _Bad("headers", f"not a header line: {text[:80]!r}")
        headers.append((name, value.strip()))
    return lines[0], headers, body


def _body(headers: list[tuple[str, str]], body: bytes, *, request: bool) -> bytes:
    coding = next((v for n, v in headers if n.lower() == "transfer-encoding"), "")
    if "chunked" in coding.lower():
        return _dechunk(body)
    length = next((v for n, v in headers if n.lower() == "content-length"), None)
    if length is not None:
        if not length.strip().isdigit():
            raise _Bad("headers", f"Content-Length is not a number: {length!r}")
        n = int(length)
        if len(body) < n:
            raise _Bad("body", f"Content-Length is {n} but {len(body)} bytes follow")
        return body[:n]
    return b"" if request else body  # a request without framing has no body; a response runs to the end


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise _Bad("body", "chunked body ends without its last (zero) chunk")
        size_text = data[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _Bad("body", f"bad chunk size {size_text[:20]!r} at byte {pos}") from None
        if size == 0:
            return bytes(out)  # trailers, if any, are not kept
        start = end + 2
        if len(data) < start + size + 2 or data[start + size:start + size + 2] != b"\r\n":
            raise _Bad("body", f"chunk of {size} bytes at byte {pos} is truncated")
        out += data[start:start + size]
        pos = start + size + 2
