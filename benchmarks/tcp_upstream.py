"""Loopback upstreams for the tcp benchmark: an echo server and a bulk source.

    python -m benchmarks.tcp_upstream ECHO_PORT SOURCE_PORT

The echo server returns every byte it reads. The source sends ``int(first line)`` bytes
(1 MiB writes of a fixed pattern) to each client that asks, then closes. Blocking sockets
and big buffers keep them syscall-bound, so they are never the bottleneck of a relay.
"""

from __future__ import annotations

import socket
import sys
import threading

CHUNK = memoryview(bytes(range(256)) * 4096)  # 1 MiB


def _serve(port: int, handler: object) -> None:
    server = socket.create_server(("127.0.0.1", port), backlog=256, reuse_port=False)
    while True:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def echo(conn: socket.socket) -> None:
    buf = bytearray(1 << 16)
    with conn:
        while n := conn.recv_into(buf):
            conn.sendall(memoryview(buf)[:n])


def source(conn: socket.socket) -> None:
    with conn:
        line = b""
        while not line.endswith(b"\n"):
            data = conn.recv(64)
            if not data:
                return
            line += data
        left = int(line)
        try:
            while left > 0:
                n = min(left, len(CHUNK))
                conn.sendall(CHUNK[:n])
                left -= n
        except OSError:
            return


def main() -> None:
    echo_port, source_port = int(sys.argv[1]), int(sys.argv[2])
    threading.Thread(target=_serve, args=(source_port, source), daemon=True).start()
    _serve(echo_port, echo)


if __name__ == "__main__":
    main()
