"""HTTP/1.1 on the wire: raw header lists, hop-by-hop filtering, heads and chunk framing.

Headers stay as the ``(name, value)`` byte pairs the parser gave us, in order and case, so a
request with no fault passes through without being decoded; ``as_multidict`` /
``from_multidict`` convert at the edge where faults need to see or rewrite them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from http import HTTPStatus

from multidict import CIMultiDict

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection",
    b"te", b"trailer", b"trailers", b"transfer-encoding", b"upgrade",
})
# Headers the proxy writes itself from the body it actually sends.
FRAMING = frozenset({b"content-length", b"transfer-encoding"})
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def reason(status: int) -> bytes:
    return _REASONS.get(status, b"Unknown")


def has_no_body(status: int) -> bool:
    return status < 200 or status in (204, 304)


def parse_length(value: bytes | str | None) -> int | None:
    """A Content-Length value as a number; None when absent or not a plain non-negative integer."""
    return int(value) if value is not None and value.strip().isdigit() else None


def header_value(headers: Sequence[tuple[bytes, bytes]], lower_name: bytes) -> bytes | None:
    """The first value of a header (``lower_name`` in lower case), or None: one pass, nothing decoded."""
    size = len(lower_name)
    for name, value in headers:
        if len(name) == size and name.lower() == lower_name:
            return value
    return None


def connection_tokens(headers: RawHeaders) -> frozenset[bytes]:
    return frozenset(
        token.strip().lower() for name, value in headers if name.lower() == b"connection" for token in value.split(b",")
    )


def as_multidict(headers: RawHeaders) -> CIMultiDict[str]:
    return CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in headers)


def from_multidict(headers: CIMultiDict[str]) -> RawHeaders:
    return [(name.encode("latin-1"), encode_value(value)) for name, value in headers.items()]


def encode_value(value: str) -> bytes:
    """Latin-1 (what ``as_multidict`` decoded, byte for byte), or UTF-8 for text a fault wrote."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def origin_form(target: bytes) -> bytes | None:
    """The path-and-query of a request target; None for a target no reverse proxy should forward.

    An absolute-form target (``http://host/path``) is reduced to its path: sent upstream as is,
    the upstream would take the client's host over ours.
    """
    if target[:1] == b"/":
        return target
    scheme, sep, rest = target.partition(b"://")
    if sep and scheme.lower() in (b"http", b"https"):
        slash, query = rest.find(b"/"), rest.find(b"?")
        if slash >= 0 and (query < 0 or slash < query):
            return rest[slash:]
        return b"/" + rest[query:] if query >= 0 else b"/"
    return target if target == b"*" else None


def request_head(method: bytes, target: bytes, headers: RawHeaders) -> bytearray:
    head = bytearray(method + b" " + target + b" HTTP/1.1\r\n")
    for name, value in headers:
        head += name + b": " + value + b"\r\n"
    head += b"\r\n"
    return head


def response_head(status: int, phrase: bytes, headers: RawHeaders) -> bytearray:
    head = bytearray(b"HTTP/1.1 %d %s\r\n" % (status, phrase))
    for name, value in headers:
        head += name + b": " + value + b"\r\n"
    head += b"\r\n"
    return head


def chunk(data: bytes) -> bytes:
    """One chunk of a ``Transfer-Encoding: chunked`` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


async def chunked(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A body's pieces framed as ``Transfer-Encoding: chunked`` (empty pieces skipped: one would end it)."""
    async for piece in pieces:
        if piece:
            yield chunk(piece)
    yield LAST_CHUNK
