"""Kill a local process named by its pid file; restart it with a shell command.

``perform`` reads the pid file and sends the signal. ``undo`` runs ``restart`` (in its own
session, so what it starts outlives Brownout) and waits for the command itself to exit,
not for what it started in the background. A process stopped with SIGSTOP/SIGTSTP is
resumed with SIGCONT instead when there is no restart command.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from brownout.experiment.model import ProcessTarget
from brownout.targets.base import Target
from faults.errors import NotFound, Unauthorized, Unreachable

RESTART_TIMEOUT = 60.0
_PAUSING = (signal.SIGSTOP, signal.SIGTSTP)


def read_pid(pidfile: Path) -> int:
    try:
        text = pidfile.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotFound(f"pid file {pidfile} not found") from None
    except OSError as exc:
        raise NotFound(f"cannot read pid file {pidfile}: {exc}") from None
    if not text.isdigit() or int(text) <= 0:
        raise NotFound(f"pid file {pidfile} does not hold a pid: {text[:40]!r}")
    return int(text)


class ProcessTargetAdapter(Target):
    def __init__(self, config: ProcessTarget, *, cwd: Path | None = None, restart_timeout: float = RESTART_TIMEOUT) -> None:
        pauses = signal.Signals[config.signal] in _PAUSING
        # Timed undo: the restart command after restart_after (0: at once), or SIGCONT after
        # restart_after when the process was only stopped; otherwise only cleanup resumes it.
        timed = config.restart is not None or (pauses and config.restart_after > 0)
        super().__init__(config.restart_after if timed else None)
        self.config = config
        self.cwd = cwd
        self.restart_timeout = restart_timeout
        self.pid: int | None = None

    def describe(self) -> str:
        return f"{self.config.signal} process:{self.config.pidfile}"

    @property
    def can_undo(self) -> bool:
        return self.config.restart is not None or signal.Signals[self.config.signal] in _PAUSING

    async def _act(self) -> None:
        pid = read_pid(self.config.pidfile)
        try:
            os.kill(pid, signal.Signals[self.config.signal])
        except ProcessLookupError:
            raise NotFound(f"no process {pid} (from pid file {self.config.pidfile})") from None
        except PermissionError:
            raise Unauthorized(f"not allowed to signal process {pid} (from pid file {self.config.pidfile})") from None
        self.pid = pid

    async def _undo(self) -> None:
        if self.config.restart is None:
            if self.pid is not None:
                try:
                    os.kill(self.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass  # gone meanwhile: nothing left to resume
            return
        await self._run_restart(self.config.restart)

    async def _run_restart(self, command: str) -> None:
        # stderr goes to a file, not a pipe: a daemon started in the background would hold
        # a pipe open and make us wait for it to exit.
        with tempfile.TemporaryFile() as err:
            proc = await asyncio.create_subprocess_shell(
                command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
                cwd=self.cwd, start_new_session=True,
            )
            try:
                code = await asyncio.wait_for(proc.wait(), self.restart_timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise Unreachable(f"restart command {command!r} did not finish in {self.restart_timeout:g}s") from None
            if code != 0:
                err.seek(0)
                tail = err.read()[-400:].decode("utf-8", "replace").strip()
                raise Unreachable(f"restart command {command!r} failed with exit code {code}" + (f": {tail}" if tail else ""))
