"""One relayed connection: the client's socket, the upstream's socket, and two links."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, cast

from proxy.sockets import set_rst_on_close
from proxy.tcp.link import DOWNSTREAM, UPSTREAM, Link, ToxicEntry

if TYPE_CHECKING:
    from proxy.tcp.relay import TcpProxy

_LINGER_ABORT_S = 30.0  # a peer that never drains cannot hold a closed connection forever


class Side(asyncio.Protocol):
    """One socket of a connection: the client's or the upstream's."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.reading: Link | None = None  # the link this socket feeds
        self.writing: Link | None = None  # the link that writes to this socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.reading is not None:
            self.reading.feed(data)

    def eof_received(self) -> bool:
        if self.reading is not None:
            self.reading.feed_eof()
        return True  # we decide when to close

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.writing is not None:
            self.writing.dst_paused(True)

    def resume_writing(self) -> None:
        if self.writing is not None:
            self.writing.dst_paused(False)


class ClientSide(Side):
    """The accepted socket: registers the connection and starts dialling upstream."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]  # until upstream is connected
        self.conn.accepted()


class Connection:
    """A client connection and its upstream connection, relayed by two links."""

    def __init__(self, proxy: TcpProxy, conn_id: str) -> None:
        self.proxy = proxy
        self.id = conn_id
        self.closed = False
        self.client = ClientSide(self)
        self.server = Side(self)
        self.upstream = Link(self, UPSTREAM, self.client, self.server, proxy.byte_counter(UPSTREAM))
        self.downstream = Link(self, DOWNSTREAM, self.server, self.client, proxy.byte_counter(DOWNSTREAM))
        self.client.reading = self.server.writing = self.upstream
        self.server.reading = self.client.writing = self.downstream
        self._dial: asyncio.Task[None] | None = None
        self._abort_handle: asyncio.TimerHandle | None = None

    def accepted(self) -> None:
        self.proxy.track(self)
        self._dial = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        transport = await self.proxy.dial(lambda: self.server)
        if transport is None or self.closed:
            if transport is not None:
                transport.close()
            self.close()
            return
        if self.server.transport is None:  # uvloop may run connection_made after returning
            self.server.transport = transport
        self.apply(self.proxy.toxics)
        self.upstream.start()
        self.downstream.start()

    def apply(self, entries: list[ToxicEntry]) -> None:
        if self.closed or self.server.transport is None:
            return  # toxics are applied once upstream is connected
        for link in (self.upstream, self.downstream):
            for entry in link.set_toxics([e for e in entries if e.direction == link.direction]):
                self.proxy.applied(entry, self.id)

    def side_lost(self, side: Side) -> None:
        side.lost = True
        if not self.closed:
            if side.reading is not None:
                side.reading.feed_eof()  # pending data in that direction still goes out
            if side is self.client:
                self.close()  # nobody is left to deliver the other direction to
        self._forget_when_gone()

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        if self._dial is not None and self._dial is not asyncio.current_task():
            self._dial.cancel()
        self.upstream.stop()
        self.downstream.stop()
        for side in (self.client, self.server):
            if side.transport is None:
                continue
            if reset:
                set_rst_on_close(side.transport)
                side.transport.abort()
            else:
                side.transport.close()  # flushes what is buffered, then FIN
        self._abort_handle = asyncio.get_running_loop().call_later(_LINGER_ABORT_S, self.abort)
        self._forget_when_gone()

    def abort(self) -> None:
        """Drop both sockets now, flushing nothing (shutdown, or a peer that never drains)."""
        self.close()
        for side in (self.client, self.server):
            if side.transport is not None and not side.lost:
                side.transport.abort()

    def _forget_when_gone(self) -> None:
        if self.closed and all(s.lost or s.transport is None for s in (self.client, self.server)):
            if self._abort_handle is not None:
                self._abort_handle.cancel()
            self.proxy.forget(self)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self._dial, self.upstream.pump, self.downstream.pump) if t is not None]

