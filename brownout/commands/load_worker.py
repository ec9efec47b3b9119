"""``brownout load-worker --master-host H``: a Locust worker for ``--engine locust`` loads.

Start one per core on each load machine; it connects to the master (``brownout load`` or
``brownout run`` with ``--engine locust --expect-workers N``), runs Brownout's open-loop
generator for its share of each load, and exits when the master says quit (or is silent
for 60 s). Exit 4 when no master answers within ``--connect-timeout``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from brownout.load.distributed.worker import serve
from faults.errors import InvalidInput, Unreachable
from faults.units import parse_duration


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "load-worker", help="a load worker for --engine locust (connects to the Locust master)",
        description="Join a Locust master started by `brownout load --engine locust` or `brownout run --engine locust` "
                    "and run Brownout's open-loop load for its share of each run. The master has no authentication: "
                    "reach it over a private network (it listens on 127.0.0.1 unless told otherwise).")
    p.add_argument("--master-host", required=True, metavar="H", help="the master's host or IP")
    p.add_argument("--master-port", type=int, default=5557, metavar="P", help="the master's port (default 5557)")
    p.add_argument("--connect-timeout", default="60s", metavar="D", help="give up when no master answers (default 60s)")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # local workers leave with their master
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR, format="brownout load-worker: %(message)s")
    try:
        timeout = parse_duration(args.connect_timeout)
    except ValueError as exc:
        print(f"brownout load-worker: --connect-timeout: {exc}", file=sys.stderr)
        return 3
    try:
        return serve(args.master_host, args.master_port, connect_timeout=timeout, parent_pid=args.parent_pid)
    except InvalidInput as exc:
        print(f"brownout load-worker: {exc}", file=sys.stderr)
        return 3
    except Unreachable as exc:
        print(f"brownout load-worker: {exc}", file=sys.stderr)
        return 4
