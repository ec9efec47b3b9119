"""Target adapters: a real process killed by pid file and restarted; Docker's unreachable path."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from brownout.experiment.model import ActionTarget, DockerTarget, ProcessTarget
from brownout.targets import DockerTargetAdapter, ProcessTargetAdapter, build_target
from faults.errors import NotFound, Unreachable


def _state(pid: int) -> str | None:
    """The process state letter from /proc (R, S, T, Z...), None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    proc = subprocess.Popen(["sleep", "60"])
    pidfile = tmp_path / "worker.pid"
    pidfile.write_text(f"{proc.pid}\n")
    yield proc, pidfile
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def _kill_restarted(pidfile: Path, original: int) -> int:
    new_pid = int(pidfile.read_text())
    assert new_pid != original
    os.kill(new_pid, signal.SIGKILL)  # the restarted sleep is ours: end it by its pid
    return new_pid


async def test_kill_by_pidfile_then_restart_command(sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    proc, pidfile = sleeper
    restart = f"sleep 60 & echo $! > {pidfile}; echo restarted > marker"
    target = ProcessTargetAdapter(ProcessTarget(pidfile=pidfile, signal="KILL", restart=restart, restart_after=0.2),
                                  cwd=tmp_path)
    await target.perform()
    assert await asyncio.to_thread(proc.wait, 5) == -signal.SIGKILL
    assert not (tmp_path / "marker").exists()  # restart waits for restart_after
    await asyncio.wait_for(target.wait_undone(), 10)
    assert target.undone and target.undo_error is None
    assert (tmp_path / "marker").read_text() == "restarted\n"
    new_pid = _kill_restarted(pidfile, proc.pid)
    await target.undo()  # idempotent: cleanup after a timed restart does nothing more
    assert int(pidfile.read_text()) == new_pid


async def test_cleanup_undo_restarts_at_once(sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    proc, pidfile = sleeper
    target = build_target(ActionTarget(process=ProcessTarget(
        pidfile=pidfile, signal="TERM", restart=f"sleep 60 & echo $! > {pidfile}", restart_after=3600)), cwd=tmp_path)
    await target.perform()
    assert await asyncio.to_thread(proc.wait, 5) == -signal.SIGTERM
    await asyncio.wait_for(target.undo(), 10)  # cleanup does not wait an hour
    _kill_restarted(pidfile, proc.pid)


async def test_stop_then_cont(sleeper: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, pidfile = sleeper
    target = ProcessTargetAdapter(ProcessTarget(pidfile=pidfile, signal="STOP"))
    await target.perform()
    for _ in range(100):
        if _state(proc.pid) == "T":
            break
        await asyncio.sleep(0.01)
    assert _state(proc.pid) == "T"
    await target.undo()
    for _ in range(100):
        if _state(proc.pid) != "T":
            break
        await asyncio.sleep(0.01)
    assert _state(proc.pid) in ("S", "R")


async def test_failing_restart_command_is_reported(sleeper: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, pidfile = sleeper
    target = ProcessTargetAdapter(ProcessTarget(pidfile=pidfile, restart="echo cannot start >&2; exit 3"))
    await target.perform()
    await target.wait_undone()
    assert isinstance(target.undo_error, Unreachable) and "exit code 3: cannot start" in str(target.undo_error)
    with pytest.raises(Unreachable, match="exit code 3"):
        await target.undo()  # cleanup tries again and says so


async def test_missing_pidfile_and_dead_pid(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not found"):
        await ProcessTargetAdapter(ProcessTarget(pidfile=tmp_path / "none.pid")).perform()
    (tmp_path / "junk.pid").write_text("hello")
    with pytest.raises(NotFound, match="does not hold a pid"):
        await ProcessTargetAdapter(ProcessTarget(pidfile=tmp_path / "junk.pid")).perform()
    proc = subprocess.Popen(["true"])
    proc.wait()
    (tmp_path / "gone.pid").write_text(str(proc.pid))
    with pytest.raises(NotFound, match=f"no process {proc.pid}"):
        await ProcessTargetAdapter(ProcessTarget(pidfile=tmp_path / "gone.pid")).perform()


async def test_undo_before_perform_does_nothing(tmp_path: Path) -> None:
    target = ProcessTargetAdapter(ProcessTarget(pidfile=tmp_path / "x.pid", restart="exit 1"))
    await target.undo()
    assert not target.performed and not target.undone


async def test_docker_without_a_socket_is_unreachable_with_a_clear_message(tmp_path: Path) -> None:
    socket_path = tmp_path / "docker.sock"
    target = DockerTargetAdapter(DockerTarget(container="gpu-worker", action="kill", socket=str(socket_path)))
    assert target.describe() == "kill docker:gpu-worker"
    with pytest.raises(Unreachable) as raised:
        await target.perform()
    message = str(raised.value)
    assert f"cannot reach the Docker Engine at unix://{socket_path}" in message and "is dockerd running" in message
    assert not target.performed
    await target.undo()  # nothing was done, nothing to undo
