"""Where a proxy's CPU goes under load: py-spy on one ``brownout proxy`` while wrk drives it.

    .venv/bin/pip install py-spy
    .venv/bin/python -m benchmarks.profile_proxy .:latency0 --log-level info --seconds 8

The tree and flag are those of ``benchmarks.compare`` (``DIR[:faults|rate_limit|latency0]``).
py-spy samples the proxy (pinned to the server CPU) at ``--rate`` Hz while wrk (one thread,
``--connections``) sends ``/json``; the report gives the share of samples by function, as self
time (the innermost frame of ours or of the library it is in) and as inclusive time (anywhere on
the stack), and keeps the raw collapsed stacks in ``--out`` for a closer look. py-spy reads the
process without stopping it (``--nonblocking``): stopping it for each sample puts most samples in
the socket writes. The price is that some stacks are cut short, so inclusive shares are lower
bounds; self time is the number to read.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.compare import start_variant
from benchmarks.harness import JSON_300, LOAD_CPU, VENV_BIN, Stack, free_port, wrk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", metavar="DIR[:flag]")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--log-level", default="warning", choices=["info", "warning"])
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", default="/tmp/brownout-profile.txt", help="the collapsed stacks (py-spy raw)")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    os.sched_setaffinity(0, {LOAD_CPU})
    tree, _, flag = args.variant.partition(":")
    with tempfile.TemporaryDirectory(prefix="brownout-profile-") as tmp:
        stack = Stack(Path(tmp))
        try:
            up = free_port()
            stack.nginx("upstream", LOAD_CPU, up, f"location = /json {{ default_type application/json; return 200 '{JSON_300}'; }}")
            port, pid = start_variant(stack, "proxy", tree, up, flag, args.log_level)
            url = f"http://127.0.0.1:{port}/json"
            wrk(url, args.connections, 2)  # warm up
            load = threading.Thread(target=wrk, args=(url, args.connections, args.seconds + 2))
            load.start()
            subprocess.run([py_spy, "record", "--pid", str(pid), "--rate", str(args.rate), "--duration",
                            str(args.seconds), "--format", "raw", "--nonblocking", "--output", args.out],
                           check=True, capture_output=True, timeout=args.seconds + 60)
            load.join()
        finally:
            stack.close()
    report(Path(args.out), args.top)
    return 0


def report(path: Path, top: int) -> None:
    """Self and inclusive shares by function from py-spy's collapsed stacks."""
    own, inclusive, total = collections.Counter[str](), collections.Counter[str](), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_name(f) for f in stack.split(";") if f]
        n = int(count)
        total += n
        if frames:
            own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    print(f"{total} samples; collapsed stacks in {path}\n\nself time (innermost frame):")
    for name, n in own.most_common(top):
        print(f"{100 * n / total:6.1f} %  {name}")
    print("\ninclusive time (on the stack):")
    for name, n in inclusive.most_common(top):
        print(f"{100 * n / total:6.1f} %  {name}")


def _name(frame: str) -> str:
    """``func (path/to/file.py:LINE)`` -> ``file.py:func`` (lines merged)."""
    func, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1] if where else ""
    return f"{file}:{func}" if file else func


if __name__ == "__main__":
    sys.exit(main())
