"""Arm and disarm skew of a fault staged on a fleet of sidecars (the runner's own path).

    .venv/bin/python -m benchmarks.fleet_skew                 # 10 sidecars, 20 arms
    .venv/bin/python -m benchmarks.fleet_skew --sidecars 5 --arms 50

Starts N ``brownout proxy`` processes on 127.0.0.2, .3, ... (every one on this machine, so
their clocks are one clock and the skew is the timers' own spread, without clock error) and
stages a fault on all of them through ``brownout.fleet.sink.GroupSink`` with a lead of a few
measured round trips, as ``brownout run`` does; each sidecar reports when it activated and
ended it. Prints a Markdown row and writes it to ``benchmarks/results/fleet_skew.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import REPO, VENV_BIN, free_port  # noqa: E402
from brownout.admin_client import AdminClient  # noqa: E402
from brownout.fleet.prepare import lead_for  # noqa: E402
from brownout.fleet.sink import GroupSink, Window  # noqa: E402


def _start(workdir: Path, n: int) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    processes, admins = [], []
    for i in range(n):
        address, port = f"127.0.0.{2 + i}", free_port()
        config = {"admin": {"listen": f"{address}:{port}"}, "fault_ttl": {"default": "30s", "max": "5m"},
                  "routes": [{"name": "api", "listen": f"127.0.0.1:{free_port()}", "upstream": "http://127.0.0.1:9"}]}
        path = workdir / f"sidecar-{i}.yaml"
        path.write_text(yaml.safe_dump(config))
        processes.append(subprocess.Popen([str(VENV_BIN / "brownout"), "proxy", "--config", str(path)], cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        admins.append(f"http://{address}:{port}")
    return processes, admins


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(admins: list[str], arms: int) -> dict[str, list[float]]:
    clients = {a: AdminClient(a) for a in admins}
    try:
        rtts = []
        for client in clients.values():
            for _ in range(3):
                started = time.perf_counter()
                await client.health()
                rtts.append(time.perf_counter() - started)
        lead = lead_for(statistics.median(rtts), len(admins))
        sink = GroupSink("bench", f"all: {len(admins)} of {len(admins)}", admins, clients, lead_s=lead,
                         min_armed=len(admins), where="bench")
        out: dict[str, list[float]] = {"arm": [], "disarm": [], "late": [], "lead": [lead * 1000]}
        for n in range(arms):
            start_at = time.time() + lead
            fault_id = f"skew-{n}"
            await sink.add({"type": "latency", "route": "api", "id": fault_id, "params": {"delay_ms": 1}, "ttl": 30},
                           Window(start_at, start_at + 0.2))
            await asyncio.sleep(max(0.0, start_at - time.time()) + 0.01)
            await sink.confirm(fault_id)
            await asyncio.sleep(max(0.0, start_at + 0.2 - time.time()) + 0.01)
            await sink.remove(fault_id)
            arming = sink.report(fault_id)
            assert arming is not None and len(arming.activated) == len(admins), arming
            out["arm"].append(arming.arm_skew_ms or 0.0)
            out["disarm"].append(arming.disarm_skew_ms or 0.0)
            out["late"].append((max(arming.activated.values()) - start_at) * 1000)
        return out
    finally:
        for client in clients.values():
            await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sidecars", type=int, default=10)
    parser.add_argument("--arms", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brownout-fleet-bench-") as tmp:
        processes, admins = _start(Path(tmp), args.sidecars)
        try:
            for admin in admins:
                host, port = admin.removeprefix("http://").rsplit(":", 1)
                wait_listening_on(host, int(port))
            result = asyncio.run(measure(admins, args.arms))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(15)
    row = (f"| {args.sidecars} | {args.arms} | {result['lead'][0]:.0f} | {statistics.median(result['arm']):.2f} | "
           f"{_pct(result['arm'], 95):.2f} | {max(result['arm']):.2f} | {statistics.median(result['disarm']):.2f} | "
           f"{max(result['disarm']):.2f} | {statistics.median(result['late']):.2f} | {max(result['late']):.2f} |")
    text = "\n".join([
        "### Fleet arm skew (`python -m benchmarks.fleet_skew`)", "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.python_version()}, "
        f"{len(os.sched_getaffinity(0))} CPUs shared; sidecars on one machine (one clock).", "",
        "| sidecars | arms | lead ms | arm skew p50 ms | p95 | max | disarm skew p50 ms | max "
        "| last activation after start_at p50 ms | max |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", row, ""])
    print(text)
    (REPO / "benchmarks" / "results" / "fleet_skew.md").write_text(text)
    return 0


def wait_listening_on(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port}")


if __name__ == "__main__":
    sys.exit(main())
