"""Parsing of listen addresses and upstreams (``host:port``, ``http://host:port``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_host_port(text: str) -> HostPort:
    """``127.0.0.1:8080``, ``[::1]:8080``, ``redis:6379``; port 0 means "any free port"."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"expected host:port, got {text!r}")
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad port in {text!r}: must be 0-65535")
    return HostPort(host, int(port_text))


def parse_http_upstream(text: str) -> str:
    """An http(s) base URL without query or fragment, returned without a trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"upstream must be http://host:port or https://host:port, got {text!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"upstream must not have a query or fragment: {text!r}")
    return text.rstrip("/")
