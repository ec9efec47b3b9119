#!/usr/bin/env python3
"""A fleet in compose: a sidecar service scaled to three, found through Docker's DNS.

    python3 scripts/fleet_compose_check.py [--image brownout:dev]   # root, dockerd running

With deploy/fleet-compose.yaml under a project name of its own: `up -d --scale sidecar=3`
(no fixed host ports), every replica healthy; then from a container on the compose network
(`run --rm probe`): `socket.getaddrinfo('sidecar', 8475)` gives the three replicas' addresses
(checked against `docker inspect`), a fault is added on each by address, and
`brownout faults clear --discover http://sidecar:8475` clears all three and says so; `down -v`
leaves nothing. The ship check runs it after building the image (its step "fleet scale").

Only the standard library: CI runs it with the system's python3. A failure exits 1 naming
what failed; the project is taken down whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "deploy" / "fleet-compose.yaml"
REPLICAS = 3
RESOLVE = ("import json, socket; print(json.dumps(sorted({a[4][0] for a in "
           "socket.getaddrinfo('sidecar', 8475, type=socket.SOCK_STREAM)})))")


class Failed(Exception):
    """A check did not hold; the message says which and why."""


def _compose() -> list[str]:
    found = os.environ.get("COMPOSE") or ("docker-compose" if shutil.which("docker-compose") else "docker compose")
    return found.split()


def _sh(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(args, cwd=REPO, env=env, text=True, capture_output=True, timeout=timeout)
    if result.returncode != 0:
        raise Failed(f"{' '.join(args)} exited {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}")
    return result.stdout


def check(image: str) -> None:
    project = f"brownoutfleet{os.getpid()}"
    env = {**os.environ, "BROWNOUT_TOKEN": os.urandom(16).hex(), "BROWNOUT_IMAGE": image}
    compose = [*_compose(), "-p", project, "-f", str(COMPOSE_FILE)]
    try:
        started = time.monotonic()
        _sh([*compose, "up", "-d", "--scale", f"sidecar={REPLICAS}"], env)
        ids = _sh([*compose, "ps", "-q", "sidecar"], env).split()
        if len(ids) != REPLICAS:
            raise Failed(f"{len(ids)} sidecar containers up, expected {REPLICAS}")
        _sh([str(REPO / "scripts" / "wait-healthy.sh"), *ids], {**env, "WAIT_TIMEOUT": "60"})
        print(f"{REPLICAS} sidecars up and healthy: {time.monotonic() - started:.1f}s")
        expected = sorted(_sh(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                               *ids], env).split())
        probe = [*compose, "run", "--rm", "-T", "--no-deps", "probe"]
        resolved = json.loads(_sh([*probe, "python", "-c", RESOLVE], env).strip().splitlines()[-1])
        if resolved != expected:
            raise Failed(f"getaddrinfo('sidecar') in the compose network gave {resolved}; the replicas are {expected}")
        print(f"Docker's DNS: sidecar → {', '.join(resolved)} (every replica)")
        adds = "; ".join(f"brownout faults add latency --route api -p delay_ms=1 --id scaled --admin http://{ip}:8475 "
                         ">/dev/null" for ip in resolved)
        out = _sh([*probe, "sh", "-c", f"set -e; {adds}; brownout faults clear --discover http://sidecar:8475"], env)
        report = json.loads(out[out.index("{"):])
        cleared = {s["admin"]: s.get("removed") for s in report["sidecars"]}
        wanted = {f"http://{ip}:8475": ["scaled"] for ip in resolved}
        if cleared != wanted or report["unreachable"]:
            raise Failed(f"brownout faults clear --discover http://sidecar:8475 reported {report}; expected {wanted}")
        print(f"brownout faults clear --discover http://sidecar:8475: removed the fault on all {REPLICAS} replicas")
    finally:
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], cwd=REPO, env=env, capture_output=True,
                       timeout=120)
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True).stdout.split()
    if left:
        raise Failed(f"down -v left containers {left}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="brownout:dev", help="the image of the sidecars and the probe")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        check(args.image)
    except (Failed, subprocess.TimeoutExpired) as exc:
        print(f"fleet compose check FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"fleet compose check passed: {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
