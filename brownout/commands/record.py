"""``brownout record``: record a route's traffic through a proxy's admin API and save it as JSONL.

    brownout record --route model-api --duration 10m --out traffic.jsonl [--sample 0.1]
                    [--admin URL --token T] [--redact-header H] [--redact-json-path P] [--redact-pattern R]

The proxy records (it needs ``record.dir`` in its config) and this command keeps the
recording's lease (30 s, renewed every 10 s, so a recording whose client died stops soon),
waits for its duration, then downloads its lines to ``--out`` (mode 0600, written whole or
not at all). Ctrl-C ends the recording early and still saves what it holds. It works against
a proxy on another machine: nothing is read from the proxy's disk but through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from brownout.admin_client import AdminClient
from brownout.aio import run
from brownout.commands.corpus import add_redaction_options, redaction_from
from brownout.corpus.output import atomic_text
from brownout.exit_codes import ExitCode
from faults.errors import InvalidInput
from faults.units import format_duration, parse_duration

LEASE_S = 30.0
RENEW_EVERY_S = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "record", help="record a route's real traffic through a proxy and save it (JSONL)",
        description="Start a recording on a proxy's route (POST /recordings), keep its lease while it runs, "
                    "then save its lines to --out. Needs record.dir in the proxy's config. Ctrl-C ends it early "
                    "and saves what was recorded.")
    parser.add_argument("--route", required=True, help="the http route to record")
    parser.add_argument("--duration", required=True, help="how long, e.g. 30s, 10m (at most the proxy's fault_ttl.max)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="where the JSONL goes (mode 0600)")
    parser.add_argument("--sample", type=float, default=1.0, help="share of exchanges recorded (default 1.0)")
    parser.add_argument("--admin", default=os.environ.get("BROWNOUT_ADMIN", "http://127.0.0.1:8475"), help="admin API URL")
    parser.add_argument("--token", default=os.environ.get("BROWNOUT_TOKEN"), help="bearer token")
    add_redaction_options(parser, "redaction (on top of the proxy's record.redact and the headers always redacted)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, out: TextIO | None = None) -> int:
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise InvalidInput(str(exc), "--duration") from None
    if duration <= 0:
        raise InvalidInput("must be > 0", "--duration")
    if not 0 < args.sample <= 1:
        raise InvalidInput(f"must be > 0 and <= 1, got {args.sample:g}", "--sample")
    redaction = redaction_from(args)
    body: dict[str, Any] = {"route": args.route, "sample": args.sample, "duration": duration,
                            "ttl": min(LEASE_S, duration), "redact": redaction.model_dump(mode="json")}
    return run(_record(args, body, out or sys.stdout))


async def _record(args: argparse.Namespace, body: dict[str, Any], out: TextIO) -> int:
    async with AdminClient(args.admin, args.token) as client:
        # Ctrl-C is handled from before the recording starts: pressed at any moment it ends the
        # recording, which is never left running on the proxy until its lease runs out.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            rec = await client.start_recording(body)
            rid = rec["id"]
            print(f"recording {rid} on route {args.route} for {format_duration(body['duration'])} "
                  f"(sample {args.sample:g}); Ctrl-C ends it early", file=out, flush=True)
            while rec["state"] == "recording":
                try:
                    await asyncio.wait_for(stop.wait(), RENEW_EVERY_S)
                except TimeoutError:
                    pass
                if stop.is_set():
                    rec = await client.patch_recording(rid, {"end": True})
                    break
                rec = await client.recording(rid)
                if rec["state"] == "recording":
                    rec = await client.patch_recording(rid, {"ttl": LEASE_S})
                    print(f"  {rec['lines']} lines so far", file=out, flush=True)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        with atomic_text(args.out) as handle:
            size = await client.recording_data(rid, handle.buffer)
        rec = await client.recording(rid)
    dropped = ", ".join(f"{reason} {n}" for reason, n in rec["dropped"].items()) or "none"
    print(f"saved {rec['lines']} lines ({size} bytes) to {args.out}; ended: {rec['end_reason']}; dropped: {dropped}",
          file=out)
    if rec["deleted_lines"]:
        print(f"  {rec['deleted_lines']} earlier lines were rotated out by the proxy's record.max_bytes", file=out)
    return ExitCode.HELD
