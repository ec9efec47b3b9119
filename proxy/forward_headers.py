"""The headers a request carries upstream, and a response carries back, in one pass each.

Upstream gets the client's headers in order and case, less hop-by-hop names (and those the
``Connection`` header lists), ``Host`` (the upstream's own is sent), ``Expect`` (answered
here) and framing (the proxy frames the body it actually sends), plus ``X-Forwarded-For``
(appended to), ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (kept when the client set them).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.h1 import FRAMING, HOP_BY_HOP, RawHeaders, connection_tokens, parse_length

_KEEP, _DROP, _HOST, _EXPECT, _LENGTH, _CHUNKED, _XFF, _XFP, _XFH, _CONNECTION, _REQUEST_ID, _TRACEPARENT = range(12)
_REQUEST_ACTIONS = {
    **dict.fromkeys(HOP_BY_HOP, _DROP), b"connection": _CONNECTION, b"host": _HOST, b"expect": _EXPECT,
    b"content-length": _LENGTH, b"transfer-encoding": _CHUNKED, b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP, b"x-forwarded-host": _XFH, b"x-request-id": _REQUEST_ID,
    b"traceparent": _TRACEPARENT,
}
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade"})


@dataclass(slots=True)
class Outgoing:
    headers: RawHeaders  # to send upstream, without Host and framing
    declared_length: int | None  # the client's Content-Length
    chunked: bool  # the client sent a chunked body
    expects_continue: bool
    upgrade: bytes  # the Upgrade header the client sent (never forwarded), lower case
    host: bytes = b""  # the client's Host (b"" when it sent none)
    request_id: bytes = b""  # the client's X-Request-Id (kept and forwarded): found in this pass, not by a scan later
    traceparent: bytes = b""  # the client's W3C traceparent (kept and forwarded), for tracing's sampling decision


def upstream_request_headers(raw: RawHeaders, client_ip: str) -> Outgoing:
    kept: RawHeaders = []
    host = forwarded_for = b""
    length: int | None = None
    chunked = expects_continue = has_proto = has_host = False
    listed: frozenset[bytes] = frozenset()
    upgrade = request_id = traceparent = b""
    for name, value in raw:
        lowered = name.lower()
        action = _REQUEST_ACTIONS.get(lowered, _KEEP)
        if action == _KEEP:
            kept.append((name, value))
        elif action == _HOST:
            host = host or value
        elif action == _LENGTH:
            length = parse_length(value)
        elif action == _CHUNKED:
            chunked = b"chunked" in value.lower()
        elif action == _EXPECT:
            expects_continue = value.strip().lower() == b"100-continue"
        elif action == _XFF:
            forwarded_for = forwarded_for + b", " + value if forwarded_for else value
        elif action == _CONNECTION:
            listed = connection_tokens(raw) - _PLAIN_CONNECTION
        elif action == _REQUEST_ID:
            request_id = request_id or value
            kept.append((name, value))
        elif action == _TRACEPARENT:
            traceparent = traceparent or value
            kept.append((name, value))
        else:
            if lowered == b"upgrade":
                upgrade = value.strip().lower()
            has_proto |= action == _XFP
            has_host |= action == _XFH
            if action != _DROP:
                kept.append((name, value))
    if listed:
        kept = [(name, value) for name, value in kept if name.lower() not in listed]
    client = client_ip.encode()
    kept.append((b"X-Forwarded-For", forwarded_for + b", " + client if forwarded_for else client))
    if not has_proto:
        kept.append((b"X-Forwarded-Proto", b"http"))
    if host and not has_host:
        kept.append((b"X-Forwarded-Host", host))
    return Outgoing(kept, length, chunked, expects_continue, upgrade, host, request_id, traceparent)


def response_headers(raw: RawHeaders) -> tuple[RawHeaders, int | None]:
    """Upstream's headers less hop-by-hop ones, and its Content-Length (None when absent).

    A transfer coding other than ``chunked`` (rare: ``gzip``) is part of what the bytes are, so it
    stays; the proxy adds ``chunked`` itself where it frames the body that way.
    """
    kept: RawHeaders = []
    length: int | None = None
    listed = False
    for name, value in raw:
        lowered = name.lower()
        if lowered in HOP_BY_HOP:
            # "Connection: keep-alive" (nginx sends it on every response) names nothing to drop
            listed |= lowered == b"connection" and value.lower() not in _PLAIN_CONNECTION
            if lowered == b"transfer-encoding":
                codings = [c.strip() for c in value.split(b",") if c.strip().lower() not in (b"chunked", b"")]
                if codings:
                    kept.append((name, b", ".join(codings)))
            continue
        if lowered == b"content-length":
            length = parse_length(value)
        kept.append((name, value))
    if listed:
        names = connection_tokens(raw) - FRAMING  # framing is never the upstream's to drop
        kept = [(name, value) for name, value in kept if name.lower() not in names]
    return kept, length
