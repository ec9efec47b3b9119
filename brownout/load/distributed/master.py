"""Locust's master, inside Brownout's process, on a native thread of its own.

Brownout's runner is an asyncio (uvloop) program; Locust's ``MasterRunner`` is gevent. The
master runs on a dedicated thread with its own gevent hub (Locust imported without monkey
patching, ``locust_import``), so a busy event loop never starves its heartbeats and
gevent never blocks the loop. The two sides meet in two places only:

* asyncio → gevent: ``send``/``close`` put commands on a thread-safe queue that the hub
  drains every ``_TICK`` seconds (zmq sockets belong to the hub's thread);
* gevent → asyncio: messages from workers and changes of membership are handed to the
  loop with ``call_soon_threadsafe``.

Membership is Locust's: the workers it knows that are not ``missing`` (no heartbeat for
three seconds) and have said ``HELLO``. The master listens on ``bind_host`` (loopback by
default): Locust's protocol has no authentication, so anyone who can reach the port can
join as a worker and be sent the corpus.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from brownout.load.distributed.locust_import import import_locust
from brownout.load.distributed.protocol import HELLO, REPORT
from faults.errors import Unreachable

_TICK = 0.02
_MEMBERS_EVERY = 0.1

OnMessage = Callable[[str, str, Any], None]  # (worker id, message type, data)
OnMembers = Callable[[dict[str, int]], None]  # worker id -> Locust's worker index, for live workers


class LocustMaster:
    def __init__(self, bind_host: str, bind_port: int, on_message: OnMessage, on_members: OnMembers) -> None:
        self.bind_host = bind_host
        self.bind_port = bind_port
        self.port = bind_port
        self._on_message = on_message
        self._on_members = on_members
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hello: set[str] = set()

    async def start(self, timeout: float = 10.0) -> int:
        """Bind and serve; the port bound (``bind_port`` 0 picks one). Unreachable when it cannot listen."""
        self._loop = asyncio.get_running_loop()
        locust = import_locust()  # here, on the main thread: Locust installs a signal handler on import
        logging.getLogger("locust").setLevel(logging.ERROR)  # its news (workers ready, CPU warnings) is ours to tell
        self._thread = threading.Thread(target=self._serve, args=(locust,), name="brownout-locust-master", daemon=True)
        self._thread.start()
        ready = await self._loop.run_in_executor(None, self._ready.wait, timeout)
        if self._error is not None or not ready:
            raise Unreachable(f"the Locust master cannot listen on {self.bind_host}:{self.bind_port}: "
                              f"{self._error or 'timed out'}")
        return self.port

    def send(self, worker: str, msg_type: str, data: Any) -> None:
        self._commands.put(("send", (worker, msg_type, data)))

    async def close(self, timeout: float = 5.0) -> None:
        """Tell every worker to quit, stop the master, wait (bounded) for its thread."""
        self._commands.put(("quit", None))
        if self._thread is not None and self._thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, timeout)

    # -- the hub's thread

    def _deliver(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _serve(self, locust: Any) -> None:
        import gevent

        environment = locust.Environment(user_classes=[])
        try:
            runner = environment.create_master_runner(self.bind_host, self.bind_port)
        except BaseException as exc:  # noqa: BLE001 - Locust calls sys.exit when the port is taken
            self._error = f"{exc.__class__.__name__}: {exc}" if str(exc) else "address in use"
            self._ready.set()
            return
        self.port = runner.server.port
        missing = locust.runners.STATE_MISSING

        def on_hello(msg: Any, **_: Any) -> None:
            self._hello.add(msg.node_id)
            self._deliver(self._on_message, msg.node_id, HELLO, msg.data)

        def on_report(msg: Any, **_: Any) -> None:
            self._deliver(self._on_message, msg.node_id, REPORT, msg.data)

        runner.register_message(HELLO, on_hello)
        runner.register_message(REPORT, on_report)
        self._ready.set()
        members: dict[str, int] = {}
        since_members = 0.0
        try:
            while True:
                gevent.sleep(_TICK)
                if self._drain(runner):
                    break
                since_members += _TICK
                if since_members >= _MEMBERS_EVERY:
                    since_members = 0.0
                    now = {c.id: runner.get_worker_index(c.id) for c in runner.clients.all
                           if c.state != missing and c.id in self._hello}
                    if now != members:
                        members = now
                        self._deliver(self._on_members, dict(now))
        finally:
            runner.quit()  # tells every worker to quit, then stops Locust's greenlets
            runner.server.close(linger=0)

    def _drain(self, runner: Any) -> bool:
        """Run queued commands; True when told to quit."""
        while True:
            try:
                command, args = self._commands.get_nowait()
            except queue.Empty:
                return False
            if command == "quit":
                return True
            worker, msg_type, data = args
            runner.send_message(msg_type, data, client_id=worker)
