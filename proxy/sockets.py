"""Socket options both kinds of route need."""

from __future__ import annotations

import asyncio
import socket
import struct

_LINGER_RST = struct.pack("ii", 1, 0)


def set_rst_on_close(transport: asyncio.BaseTransport | None) -> None:
    """SO_LINGER {on, 0}: the next close sends RST instead of FIN."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        except OSError:
            pass
