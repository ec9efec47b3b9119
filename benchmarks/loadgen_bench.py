"""The load generator's ceiling: ``benchmarks/load_generator.py`` run as is, its table kept.

It pins ``brownout load`` to one CPU and nginx to the other and holds open-loop rates for a
few seconds each; a rate is *held* when achieved within 1% with nothing dropped. The
``distributed`` section runs ``benchmarks/distributed_load.py`` the same way: the local
engine beside the locust engine with 1 and 2 workers, all on the one load CPU.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.harness import LOAD_CPU, REPO, SUT_CPU


def run(quick: bool) -> list[str]:
    rates, seconds = ("20000,30000", "2") if quick else ("20000,30000,40000,50000", "3")
    cpus = f"{SUT_CPU},{LOAD_CPU}"  # our own process is pinned to the load CPU; widen it back
    cmd = ["taskset", "-c", cpus, sys.executable, str(REPO / "benchmarks" / "load_generator.py"),
           "--rates", rates, "--seconds", seconds]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return ["### Load generator (`benchmarks/load_generator.py`: open loop, 64 connections, nginx upstream)", "",
            "```", *lines, "```"]


def run_distributed(quick: bool) -> list[str]:
    rates, seconds, runs = ("10000,20000", "2", "1") if quick else ("10000,20000,30000,40000,50000", "3", "3")
    cpus = f"{SUT_CPU},{LOAD_CPU}"
    cmd = ["taskset", "-c", cpus, sys.executable, str(REPO / "benchmarks" / "distributed_load.py"),
           "--rates", rates, "--seconds", seconds, "--runs", runs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, check=False)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return ["### Load engines (`benchmarks/distributed_load.py`: local vs locust with 1 and 2 workers, one load CPU)",
            "", "```", *lines, "```"]
