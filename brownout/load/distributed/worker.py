"""``brownout load-worker``: a Locust worker that runs Brownout's open-loop load when told to.

Locust's ``WorkerRunner`` owns the main thread (a gevent hub, not monkey patched): it
connects, answers heartbeats and carries Brownout's messages. A run (``RUN``) goes to a
``ShareRun`` on its own native thread and loop; its reports come back through a queue that
the hub drains every ``_TICK`` seconds. Runs may overlap (the runner arms its method's load
while the baseline's last answers come in); each has its own thread. The worker serves runs
until the master says ``quit``, the master is silent past Locust's timeout (60 s), or (a worker the
master started itself) its parent process is gone.
"""

from __future__ import annotations

import math
import os
import queue
import socket
import time
from typing import Any

from brownout.load.distributed.locust_import import import_locust
from brownout.load.distributed.protocol import HELLO, REPORT, RUN, SHARE, STOP, EpochWire, WorkerPlan, WorkerReport
from brownout.load.distributed.worker_load import ShareRun
from faults.errors import InvalidInput, Unreachable

_TICK = 0.02  # how often the hub hands queued reports to Locust
_PARENT_CHECK = 0.5


class _Worker:
    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.outbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.runs: dict[str, ShareRun] = {}

    # Locust calls these on the hub with (environment=..., msg=...).
    def on_run(self, msg: Any, **_: Any) -> None:
        try:
            plan = WorkerPlan.parse(msg.data)
            plan.payload_source()  # fail here, with the field named, rather than on the load thread
        except InvalidInput as exc:
            run = msg.data.get("run", "?") if isinstance(msg.data, dict) else "?"
            self.outbox.put(WorkerReport(run=str(run), final=True, error=f"bad plan: {exc}").model_dump())
            return
        self.runs = {run_id: r for run_id, r in self.runs.items() if r.running}
        if plan.run not in self.runs:
            self.runs[plan.run] = run = ShareRun(plan, self.outbox.put)
            run.start()

    def _run_of(self, msg: Any) -> tuple[ShareRun | None, dict[str, Any]]:
        data = msg.data if isinstance(msg.data, dict) else {}
        return self.runs.get(str(data.get("run"))), data

    def on_share(self, msg: Any, **_: Any) -> None:
        run, data = self._run_of(msg)
        if run is not None:
            try:
                epoch = EpochWire.model_validate(data.get("epoch")).epoch()
            except (ValueError, InvalidInput):
                return  # a malformed epoch: keep the current share
            run.reassign(epoch)

    def on_stop(self, msg: Any, **_: Any) -> None:
        run, _ = self._run_of(msg)
        if run is not None:
            run.stop()

    def flush(self) -> None:
        while True:
            try:
                report = self.outbox.get_nowait()
            except queue.Empty:
                return
            self.runner.send_message(REPORT, report)

    def close(self) -> None:
        for run in self.runs.values():
            run.stop()
        for run in self.runs.values():
            run.join(5.0)


def serve(master_host: str, master_port: int, *, connect_timeout: float = 60.0, parent_pid: int | None = None) -> int:
    """Connect to the master and serve runs until told to quit; 0 when it ends normally."""
    locust = import_locust()
    import gevent

    runners = locust.runners
    # Locust waits CONNECT_TIMEOUT per try and gives up after CONNECT_RETRY_COUNT more: about connect_timeout in all.
    runners.CONNECT_TIMEOUT = min(runners.CONNECT_TIMEOUT, connect_timeout)
    runners.CONNECT_RETRY_COUNT = max(0, math.ceil(connect_timeout / runners.CONNECT_TIMEOUT) - 1)
    environment = locust.Environment(user_classes=[])
    try:
        runner = environment.create_worker_runner(master_host, master_port)
    except ConnectionError:
        raise Unreachable(f"no Locust master answered at {master_host}:{master_port} "
                          f"within {connect_timeout:g}s") from None
    worker = _Worker(runner)
    runner.register_message(RUN, worker.on_run)
    runner.register_message(SHARE, worker.on_share)
    runner.register_message(STOP, worker.on_stop)
    runner.send_message(HELLO, {"pid": os.getpid(), "host": socket.gethostname(), "version": locust.version})
    checked = time.monotonic()
    try:
        while len(runner.greenlet):  # Locust kills its greenlets on quit
            gevent.sleep(_TICK)
            worker.flush()
            if parent_pid is not None and time.monotonic() - checked > _PARENT_CHECK:
                checked = time.monotonic()
                if os.getppid() != parent_pid:
                    break
    finally:
        worker.close()
        worker.flush()
        runner.greenlet.kill(block=False)
    return 0
