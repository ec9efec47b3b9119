"""``brownout proxy --config FILE``: serve the routes of a config file."""

from __future__ import annotations

import argparse

from brownout.aio import run
from proxy.config import load_config
from proxy.logs import configure_logging
from proxy.server import serve_forever


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "proxy", help="run the fault-injection proxy",
        description="Serve the http and tcp routes of a config file, with the admin API "
                    "(and the Toxiproxy-compatible API when configured). SIGTERM drains in-flight "
                    "requests within drain_grace, then exits 0.",
    )
    parser.add_argument("--config", "-c", required=True, metavar="FILE", help="proxy config (YAML; every key: docs/architecture.md)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure_logging(args.log_level)
    run(serve_forever(config))
    return 0
