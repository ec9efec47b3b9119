"""Who may call the admin API, checked before any handler runs.

The admin API changes what a route does, so a web page the operator happens to open must not
reach it. Three rules, on every endpoint:

* **Origin.** Browsers send ``Origin`` on every cross-site request that could change state. A
  request with an ``Origin`` is answered only when that origin is this admin API itself: the
  same port as the ``Host`` it was sent to, and the same host name or a loopback one
  (``localhost``, ``127.0.0.1``, ``[::1]``). Anything else, ``Origin: null`` included, is 403.
  Clients that are not browsers (curl, Brownout's own) send no ``Origin``.
* **Host** (only without a token). A DNS-rebinding page reaches ``127.0.0.1`` under its own
  name, so its requests carry ``Host: evil.example``. Without a token the admin API binds
  loopback only, so it answers only to loopback names: an IP literal of 127.0.0.0/8 or ``::1``,
  or ``localhost``, with any port; any other name is 403. With a token the name is not
  restricted (a browser never sends the bearer token by itself, and deployments reach the API
  by their own names).
* **Token.** With ``admin.token`` set, every endpoint but the open ones needs
  ``Authorization: Bearer <token>``; the scheme is case-insensitive (RFC 7235) and the token is
  compared in constant time.

A body must also be ``Content-Type: application/json`` (checked where a handler reads it): a
page can post ``text/plain`` cross-site without a preflight, never ``application/json``.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Set
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from faults.errors import Forbidden, Unauthorized, UnsupportedMediaType

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_DEFAULT_PORT = {"http": 80, "https": 443}


def is_loopback_name(host: str) -> bool:
    name = host.lower().removesuffix(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _split_host(value: str, scheme: str = "http") -> tuple[str, int] | None:
    """``(host name, port)`` of a Host header or origin authority; None when malformed."""
    try:
        parts = urlsplit(f"{scheme}://{value}")
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.path or parts.query or parts.username is not None:
        return None
    return name, port if port is not None else _DEFAULT_PORT.get(scheme, 80)


def check_host(host: str | None) -> None:
    """Without a token: only loopback names (a request without Host comes from no browser)."""
    if host is None:
        return
    split = _split_host(host)
    if split is None or not is_loopback_name(split[0]):
        raise Forbidden(
            f"Host {host[:100]!r} refused: without a token the admin API answers only to loopback names "
            "(127.0.0.1, [::1], localhost), so a web page cannot reach it by DNS rebinding; "
            "set admin.token to serve other names", "Host")


def check_origin(origin: str, host: str | None) -> None:
    """An ``Origin`` is accepted only when it is this admin API itself."""
    try:
        parts = urlsplit(origin)
    except ValueError:  # "http://[::1" and the like
        parts = None
    own = _split_host(host) if host is not None else None
    ok = False
    if parts is not None and parts.scheme in _DEFAULT_PORT and own is not None and not parts.path.strip("/"):
        theirs = _split_host(parts.netloc, parts.scheme)
        ok = theirs is not None and theirs[1] == own[1] and (
            theirs[0] == own[0] or (is_loopback_name(theirs[0]) and is_loopback_name(own[0])))
    if not ok:  # "null" (sandboxed pages, files) has no scheme and lands here too
        raise Forbidden(f"cross-origin request refused: Origin {origin[:100]!r} is not this admin API", "Origin")


def check_token(authorization: str | None, expected: bytes) -> None:
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    given = credentials.strip().encode("utf-8", "surrogateescape")
    # compare_digest runs in time independent of where the tokens differ
    if not (hmac.compare_digest(given, expected) and scheme.lower() == "bearer"):
        raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <token>')")


def require_json(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"the body must be JSON sent as 'Content-Type: application/json', not {request.content_type!r}",
            "Content-Type")


def guard_middleware(token: str | None, open_paths: Set[str]) -> Any:
    expected = token.encode() if token else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if expected is None:
            check_host(host)
        origin = request.headers.get("Origin")
        if origin is not None:
            check_origin(origin, host)
        if expected is not None and request.path not in open_paths:
            check_token(request.headers.get("Authorization"), expected)
        return await handler(request)

    return guard
