"""``brownout faults list|add|remove|clear|catalogue``: drive a proxy by hand on a game day."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import yaml

from brownout.admin_client import AdminClient
from brownout.aio import run
from brownout.exit_codes import ExitCode
from brownout.fleet.kill import clear_fleet, clear_report
from faults import KINDS, describe
from faults.errors import InvalidInput


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("faults", help="list, add, remove or clear faults on a running proxy",
                                   description="Talk to a proxy's admin API. --admin defaults to $BROWNOUT_ADMIN "
                                               "or http://127.0.0.1:8475; --token to $BROWNOUT_TOKEN.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def admin_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--admin", default=os.environ.get("BROWNOUT_ADMIN", "http://127.0.0.1:8475"), help="admin API URL")
        p.add_argument("--token", default=os.environ.get("BROWNOUT_TOKEN"), help="bearer token")

    admin_args(actions.add_parser("list", help="active faults with id, expiry and injection count"))
    add = actions.add_parser("add", help="add a fault (a lease: it expires after --ttl unless renewed)",
                             description="Example: brownout faults add latency --route model-api "
                                         "--param delay_ms=300 --match path=/predict --ttl 5m")
    add.add_argument("type", help="fault type (see `brownout faults catalogue`) or a toxic type on a tcp route")
    add.add_argument("--route", required=True)
    add.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE", help="a parameter (repeatable)")
    add.add_argument("--match", "-m", action="append", default=[], metavar="KEY=VALUE", help="a match condition (repeatable)")
    add.add_argument("--ttl", help="lease, e.g. 30s or 5m (default: the proxy's fault_ttl.default)")
    add.add_argument("--id", help="fault id (default: generated)")
    add.add_argument("--seed", type=int, help="seed for the fault's random decisions")
    admin_args(add)
    remove = actions.add_parser("remove", help="remove one fault by id")
    remove.add_argument("id")
    admin_args(remove)
    clear = actions.add_parser(
        "clear", help="kill switch: remove every fault on every route now, on one sidecar or a fleet",
        description="Clears every sidecar named (--admin, repeatable) or resolved (--discover: every address of "
                    "the name, as for a compose service with replicas or a headless Service), in parallel. "
                    "Prints what each removed; exit 4 if any could not be reached.")
    clear.add_argument("--admin", action="append", help="admin API URL (repeatable; default $BROWNOUT_ADMIN "
                                                        "or http://127.0.0.1:8475 when no --discover)")
    clear.add_argument("--discover", action="append", default=[], metavar="URL",
                       help="http://NAME:PORT: clear every sidecar NAME resolves to (repeatable)")
    clear.add_argument("--token", default=os.environ.get("BROWNOUT_TOKEN"), help="bearer token (every sidecar)")
    catalogue = actions.add_parser("catalogue", help="every fault kind with its parameters (read from the code)")
    catalogue.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def parse_pairs(pairs: list[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs; values are YAML scalars (``300`` → int, ``[GET, POST]`` → list)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"expected KEY=VALUE, got {pair!r}", flag)
        out[key] = yaml.safe_load(value) if value else ""
    return out


def handle(args: argparse.Namespace) -> int:
    if args.action == "catalogue":
        print_catalogue(args.json)
        return 0
    if args.action == "clear":
        return _clear(args)
    result = run(_call(args))
    print(json.dumps(result, indent=2))
    return 0


async def _call(args: argparse.Namespace) -> Any:
    async with AdminClient(args.admin, args.token) as client:
        match args.action:
            case "list":
                return await client.faults()
            case "add":
                body: dict[str, Any] = {"type": args.type, "route": args.route, "params": parse_pairs(args.param, "--param")}
                for key, value in (("match", parse_pairs(args.match, "--match")), ("ttl", args.ttl), ("id", args.id), ("seed", args.seed)):
                    if value:
                        body[key] = value
                return await client.add_fault(body)
            case _:
                return await client.remove_fault(args.id)


def _clear(args: argparse.Namespace) -> int:
    admins = args.admin or ([] if args.discover else [os.environ.get("BROWNOUT_ADMIN", "http://127.0.0.1:8475")])
    results = run(clear_fleet(admins, args.discover, args.token))
    for result in results:
        if result.error is not None:
            print(f"UNREACHABLE {result.admin}: {result.error}", file=sys.stderr)
        else:
            print(f"cleared {result.admin}: {len(result.removed)} fault(s) removed", file=sys.stderr)
    print(json.dumps(clear_report(results), indent=2))
    return int(ExitCode.COULD_NOT_RUN) if any(r.error is not None for r in results) else 0


def print_catalogue(as_json: bool) -> None:
    entries = [describe(kind) for kind in KINDS]
    if as_json:
        print(json.dumps(entries, indent=2))
        return
    for entry in entries:
        print(f"{entry['type']}\n{'=' * len(entry['type'])}\n{entry['doc']}\n\nParameters:")
        for name, schema in entry["params"].items():
            default = f" (default {schema['default']!r})" if "default" in schema else ""
            kind = schema.get("type") or " | ".join(str(v) for v in schema.get("enum", [])) or "see doc"
            print(f"  {name}: {kind}{default}")
        print()
    sys.stdout.flush()
