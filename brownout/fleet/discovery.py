"""Who the sidecars of a ``proxies:`` entry are: its admin URLs, or every address of a name.

``discover: http://NAME:PORT`` asks the resolver for every A and AAAA record of NAME (what
Docker's embedded DNS answers for a compose service with replicas, and Kubernetes for a
headless Service) and makes one admin URL per address. Members are sorted by address (IP
literals numerically, v4 before v6, then names), so the same fleet always gives the same
order, whatever order the resolver answered in: target selection picks by that order.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from brownout.experiment.proxies import ProxyRef
from faults.errors import Unreachable

_DEFAULT_PORT = {"http": 80, "https": 443}


@dataclass(frozen=True, order=True)
class Sidecar:
    """One member of a group: its admin API's URL, sortable by address."""

    sort_key: tuple[int, int, str, int]
    admin: str

    @classmethod
    def from_url(cls, url: str) -> Sidecar:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port if parts.port is not None else _DEFAULT_PORT.get(parts.scheme, 80)
        try:
            address = ipaddress.ip_address(host)
            key = (0, address.version, f"{int(address):039d}", port)
        except ValueError:
            key = (1, 0, host, port)
        return cls(key, url.rstrip("/"))


@dataclass(frozen=True)
class Group:
    """A ``proxies:`` entry resolved: its members, sorted, and how they were found."""

    index: int
    label: str
    how: str  # "admin", "list", "discover" or "toxiproxy"
    source: str  # what the file says: the URL, or the discovery URL
    sidecars: tuple[Sidecar, ...]

    @property
    def admins(self) -> tuple[str, ...]:
        return tuple(s.admin for s in self.sidecars)


def admin_url(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}"


async def resolve_name(url: str) -> tuple[Sidecar, ...]:
    """Every address ``url``'s host name resolves to now, as admin URLs, sorted."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port if parts.port is not None else _DEFAULT_PORT.get(parts.scheme, 80)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Unreachable(f"discover {url}: {host!r} does not resolve: {exc}") from None
    addresses = {str(info[4][0]).split("%", 1)[0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)}
    if not addresses:
        raise Unreachable(f"discover {url}: {host!r} has no A or AAAA record")
    return tuple(sorted(Sidecar.from_url(admin_url(parts.scheme, a, port)) for a in addresses))


async def resolve_group(index: int, ref: ProxyRef) -> Group:
    if ref.discover is not None:
        return Group(index, ref.label, "discover", ref.discover, await resolve_name(ref.discover))
    if ref.toxiproxy is not None:
        return Group(index, ref.label, "toxiproxy", ref.toxiproxy, (Sidecar.from_url(ref.toxiproxy),))
    how = "list" if isinstance(ref.admin, tuple) else "admin"
    return Group(index, ref.label, how, ", ".join(ref.admins),
                 tuple(sorted(Sidecar.from_url(u) for u in ref.admins)))
