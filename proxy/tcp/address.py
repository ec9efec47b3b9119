"""Listen and upstream addresses of tcp proxies, resolved and bound the way Toxiproxy does.

Toxiproxy clients read the port from the ``listen`` it reports, and its errors are the
Go resolver's and the OS's texts; we report and word them the same way.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket

from faults.errors import Conflict


class ListenError(Conflict):
    """An address could not be resolved or bound (Toxiproxy answers 500 with this text)."""


def split_hostport(address: str) -> tuple[str, str]:
    """``host:port`` or ``[v6]:port`` → (host, port); ListenError when the port is missing."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or not address[end + 1:].startswith(":"):
            raise ListenError(f"address {address}: missing port in address")
        return address[1:end], address[end + 2:]
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ListenError(f"address {address}: missing port in address")
    if ":" in host:
        raise ListenError(f"address {address}: too many colons in address")
    return host, port


def _port_number(port: str) -> int:
    if port == "":
        return 0
    if port.isdigit():
        number = int(port)
        if number <= 65535:
            return number
        raise ListenError(f"address {port}: invalid port")
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        raise ListenError(f"address tcp/{port}: unknown port") from None


def format_address(family: int, host: str, port: int) -> str:
    """Go's spelling: ``127.0.0.1:PORT``, ``[::1]:PORT``."""
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"


async def resolve_listen(address: str) -> tuple[int, str, int]:
    """(family, host, port) for a listen address: a hostname resolves to its first IPv4
    address; an empty host means every interface (``::``, dual stack)."""
    host, port_text = split_hostport(address) if address else ("", "0")
    port = _port_number(port_text)
    if host == "":
        return socket.AF_INET6, "::", port
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ListenError(f"lookup {host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)  # stable: first IPv4 wins
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0]), port


async def canonical_listen(address: str) -> str:
    """The address as it would be reported once bound (port 0 stays 0)."""
    family, host, port = await resolve_listen(address)
    return format_address(family, host, port)


async def bind_listener(address: str) -> tuple[socket.socket, str]:
    """Bind and listen; return the socket and the bound address as Toxiproxy reports it."""
    try:
        family, host, port = await resolve_listen(address)
    except ListenError as exc:
        raise ListenError(f"listen tcp: {exc}") from None
    shown = format_address(family, host, port)
    try:
        if host == "::" and socket.has_dualstack_ipv6():
            sock = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=1024)
        else:
            sock = socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"listen tcp {shown}: bind: {reason[:1].lower()}{reason[1:]}") from None
    sock.setblocking(False)
    bound = sock.getsockname()
    return sock, format_address(family, str(bound[0]), int(bound[1]))


def upstream_target(upstream: str) -> tuple[str, int]:
    """Host and port to dial for an upstream ``host:port`` (resolved per connection)."""
    host, port_text = split_hostport(upstream)
    port = _port_number(port_text)
    if port == 0:
        raise ListenError(f"dial tcp {upstream}: connect: {os.strerror(errno.ECONNREFUSED).lower()}")
    return host or "127.0.0.1", port
