"""The Docker adapter against a real dockerd.

``.ci/run`` installs Debian's docker.io and busybox-static and starts dockerd. No registry is
needed: the test imports a one-binary image (static busybox, as ``docker import`` would)
through the Engine API, runs a container from it with host networking, and removes both at
the end. Where no daemon can run (not root, no dockerd) they skip and say so, except in CI
(``CI=true``), where .ci/run has installed everything and a skip would hide a broken set-up:
there they fail.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import shutil
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from brownout.experiment.model import DockerTarget
from brownout.targets import DockerEngine, DockerTargetAdapter

SOCKET = "/var/run/docker.sock"
# Workers of one pytest-xdist run take turns with dockerd: the one holding this lock starts it
# (when none runs) and stops it when its tests of this module are done.
LOCK = Path("/tmp/brownout-test-dockerd.lock")
IMAGE = "brownout-test-sleep:latest"


def _rootfs_tar() -> bytes:
    busybox = shutil.which("busybox") or "/bin/busybox"
    files = {"bin/busybox": Path(busybox).resolve()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, source in files.items():
            tar.add(str(source), arcname=name)
    return buf.getvalue()


async def _api(method: str, path: str, **kwargs: object) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=SOCKET)) as session:
        async with session.request(method, f"http://docker{path}", **kwargs) as response:  # type: ignore[arg-type]
            return response.status, await response.read()


def _daemon_answers() -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1)
            sock.connect(SOCKET)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in sock.recv(4096)
    except OSError:
        return False


@pytest.fixture(scope="module")
def dockerd() -> Iterator[None]:
    """A running Docker daemon: the one already there, or one started here (as root)."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _daemon()


def _daemon() -> Iterator[None]:
    process = None
    if not _daemon_answers():
        if os.geteuid() != 0 or not shutil.which("dockerd") or not (shutil.which("busybox") or Path("/bin/busybox").exists()):
            reason = "needs root, dockerd and busybox (.ci/run installs docker.io and busybox-static)"
            if os.environ.get("CI", "").lower() in ("true", "1"):
                pytest.fail(f"{reason}; in CI they must be there")
            pytest.skip(reason)
        log = open("/tmp/brownout-test-dockerd.log", "wb")
        process = subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while not _daemon_answers() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _daemon_answers():
            process.terminate()
            raise RuntimeError("dockerd did not start; see /tmp/brownout-test-dockerd.log")
    yield
    if process is not None:
        process.terminate()
        process.wait(30)


@pytest.fixture
async def container(dockerd: None) -> AsyncIterator[str]:
    status, _ = await _api("POST", "/images/create", params={"fromSrc": "-", "repo": IMAGE.split(":")[0], "tag": "latest"},
                           data=_rootfs_tar(), headers={"Content-Type": "application/x-tar"})
    assert status == 200
    name = f"brownout-test-{uuid.uuid4().hex[:8]}"
    status, body = await _api("POST", "/containers/create", params={"name": name},
                              json={"Image": IMAGE, "HostConfig": {"NetworkMode": "host"},
                                    # a PID 1 that exits on SIGTERM, so `stop` is quick
                                    "Cmd": ["/bin/busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do /bin/busybox sleep 1; done"]})
    assert status == 201, body
    status, _ = await _api("POST", f"/containers/{name}/start")
    assert status == 204
    yield name
    await _api("DELETE", f"/containers/{name}", params={"force": "true"})


async def _status(engine: DockerEngine, name: str, expect: str) -> str:
    """The container's state once it reads ``expect`` (dockerd reports transitions a moment late
    on a loaded machine), or whatever it is after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        status = (await engine.inspect(name))["State"]["Status"]
        if status == expect or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.05)


async def test_kill_then_timed_restart(container: str) -> None:
    target = DockerTargetAdapter(DockerTarget(container=container, action="kill", restart_after=0.3))
    await target.perform()
    assert await _status(target.engine, container, "exited") == "exited"
    await target.wait_undone()
    assert target.undone and await _status(target.engine, container, "running") == "running"


async def test_pause_undone_by_cleanup_and_stop_start(container: str) -> None:
    pause = DockerTargetAdapter(DockerTarget(container=container, action="pause"))
    await pause.perform()
    assert await _status(pause.engine, container, "paused") == "paused"
    await pause.undo()
    assert await _status(pause.engine, container, "running") == "running"
    stop = DockerTargetAdapter(DockerTarget(container=container, action="stop"))
    await stop.perform()
    assert await _status(stop.engine, container, "exited") == "exited"
    await stop.undo()
    assert await _status(stop.engine, container, "running") == "running"


async def test_unknown_container_is_not_found(dockerd: None) -> None:
    from faults.errors import NotFound
    with pytest.raises(NotFound, match="No such container"):
        await DockerTargetAdapter(DockerTarget(container=f"missing-{uuid.uuid4().hex[:6]}")).perform()
