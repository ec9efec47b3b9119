#!/usr/bin/env python3
"""The ship check: the package, the image and the compose stack, as CI and a new user meet them.

    python3 scripts/ship_check.py              # every step (root, dockerd running)
    python3 scripts/ship_check.py --no-docker  # the wheel steps only

Steps, each timed (a table at the end):
  base images    scripts/base-images.sh: debootstrap + docker import (kept when they exist)
  wheel house    scripts/wheelhouse.sh: the image's wheels for its own Python; Brownout's wheel
  fresh install  the wheel in a throwaway venv, run from an empty folder outside the checkout:
                 `brownout demo --list`, `brownout demo --time-scale 0.3` (0 or 1: the game
                 day's verdict), `brownout report` of its journal
  image build    docker-compose build with docker-compose.ci.yml; size, user, no build tools
  compose up     `up -d --build`, then scripts/wait-healthy.sh on every container
  experiment     from the host, the fresh venv's `brownout run library:feature-store-latency`
                 through the published ports: exit 1, golden agreement caught the fallback
  prometheus     PromQL on Prometheus' HTTP API: it scraped the sidecar's injections
  sidecar logs   JSON lines, with fault_injected events on the feature-store route
  compose down   `down -v`; no container, network or volume of the project is left
  fleet scale    scripts/fleet_compose_check.py: deploy/fleet-compose.yaml's sidecar service
                 scaled to three (no host ports), all three resolved through Docker's DNS
                 from a container on its network, cleared by `brownout faults clear --discover`

Only the standard library: CI runs it with the system's python3. Every failure says what
failed and exits 1; the stack is taken down whatever happens (--keep leaves it up).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = "brownout-base:bookworm"
IMAGE = "brownout:dev"
EXPERIMENT = "feature-store-latency"
EXPECTED_EXIT = 1            # deviated: answers stay fast 200s, golden agreement catches them
EXPECTED_SLI = "golden_agreement"
SERVICES = {"model-api", "feature-store", "gpu-worker-0", "gpu-worker-1", "redis", "brownout", "brownout-gpu-0",
            "brownout-gpu-1", "prometheus"}
LEFT_OUT = ("grafana: left out in CI: Debian has no package for it and its image needs a registry "
            "(docker-compose.ci.yml moves it to the profile needs-a-registry)")
TIMES: list[tuple[str, float]] = []
NOTES: list[str] = []


class Failed(Exception):
    """A check did not hold; the message says which and why."""


@contextmanager
def step(name: str) -> Iterator[None]:
    print(f"\n== {name}", flush=True)
    started = time.monotonic()
    try:
        yield
    finally:
        TIMES.append((name, time.monotonic() - started))
        print(f"== {name}: {TIMES[-1][1]:.1f}s", flush=True)


def sh(*args: str | Path, check: bool = True, capture: bool = False, timeout: float = 900,
       env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, text=True, timeout=timeout,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.STDOUT if capture else None)
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout or "").splitlines()[-40:])
        raise Failed(f"{' '.join(map(str, args))} exited {result.returncode}\n{tail}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def verdict(*args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a game day; once more if its baseline failed (exit 2): a machine too busy to hold the
    SLA before any fault says nothing about what is checked here, and CI machines are shared."""
    result = sh(*args, check=False, capture=True, env=env, cwd=cwd, timeout=600)
    if result.returncode == 2 and "baseline" in result.stdout:
        print("exit 2: the SLA did not hold before any fault (a busy machine); running it once more")
        result = sh(*args, check=False, capture=True, env=env, cwd=cwd, timeout=600)
    return result


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise Failed(f"expected one {pattern} in {folder}, found {[p.name for p in found]}")
    return found[0]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user: nothing that points at this checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "BROWNOUT_EXPERIMENTS", "PYTHONHOME"}}
    return {**env, **extra}


# -- the wheel ---------------------------------------------------------------------------------

def fresh_install(work: Path) -> Path:
    """Install dist/'s wheel in a new venv and run the README's commands there; the venv's bin/."""
    wheel = only(REPO / "dist", "brownout-*.whl")
    venv, home = work / "venv", work / "user"
    home.mkdir()
    started = time.monotonic()
    sh(sys.executable, "-m", "venv", venv)
    sh(venv / "bin" / "pip", "install", "-q", "--find-links", REPO / "deploy" / "wheelhouse",
       f"{wheel}[demo,report]", capture=True)
    print(f"{wheel.name}[demo,report] installed in a new venv: {time.monotonic() - started:.1f}s")
    bin_ = venv / "bin"
    env = clean_env(BROWNOUT_DEMO_CACHE=str(work / "demo-cache"))  # train as a first run does

    where = sh(bin_ / "python", "-c", "import brownout_library; print(brownout_library.__file__)",
               capture=True, cwd=home, env=env).stdout.strip()
    if not where.startswith(str(venv)):
        raise Failed(f"the library was found at {where}, not in the fresh venv")
    listing = sh(bin_ / "brownout", "demo", "--list", capture=True, cwd=home, env=env).stdout
    names = [line.split()[0] for line in listing.splitlines() if line and not line[0].isspace()]
    if EXPERIMENT not in names:
        raise Failed(f"brownout demo --list does not list {EXPERIMENT}:\n{listing}")
    print(f"brownout demo --list: {len(names)} experiments, from {Path(where).parent}")

    demo = verdict(bin_ / "brownout", "demo", "--time-scale", "0.3", cwd=home, env=env)
    if demo.returncode not in (0, 1):
        raise Failed(f"brownout demo exited {demo.returncode} (0 or 1 is a verdict):\n{demo.stdout[-4000:]}")
    print(f"brownout demo --time-scale 0.3: exit {demo.returncode} (the game day's verdict)")
    journals = sorted((home / "reports").glob("demo-*/journal.json"))  # the last run's, after a rerun
    if not journals:
        raise Failed(f"brownout demo wrote no journal under {home / 'reports'}")
    journal = journals[-1]
    html = home / "report-again.html"
    sh(bin_ / "brownout", "report", journal, "-o", html, capture=True, cwd=home, env=env)
    if b"<html" not in html.read_bytes()[:2000].lower():
        raise Failed(f"brownout report wrote no HTML to {html}")
    print(f"brownout report: {html.stat().st_size // 1024} KiB of HTML")
    return bin_


# -- the image and the stack -------------------------------------------------------------------

class Stack:
    """The compose stack with the CI override, under a project name of its own, on free ports."""

    def __init__(self) -> None:
        self.project = f"brownoutship{os.getpid()}"
        self.token = os.urandom(16).hex()
        self.ports = {name: free_port() for name in ("BROWNOUT_HTTP_PORT", "BROWNOUT_ADMIN_PORT",
                                                     "BROWNOUT_GPU_ADMIN_0_PORT", "BROWNOUT_GPU_ADMIN_1_PORT",
                                                     "BROWNOUT_TOXIPROXY_API_PORT", "PROMETHEUS_PORT")}
        compose = os.environ.get("COMPOSE") or ("docker-compose" if shutil.which("docker-compose")
                                                else "docker compose")
        self.compose = [*compose.split(), "-p", self.project,
                        "-f", "docker-compose.yml", "-f", "docker-compose.ci.yml"]
        self.env = {**os.environ, "BROWNOUT_TOKEN": self.token, **{k: str(v) for k, v in self.ports.items()}}

    def run(self, *args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(*self.compose, *args, capture=capture, check=check, env=self.env)

    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def containers(self) -> dict[str, str]:
        """service → container id."""
        out = {}
        for cid in self.run("ps", "-q", capture=True).stdout.split():
            labels = json.loads(sh("docker", "inspect", "-f", "{{json .Config.Labels}}", cid, capture=True).stdout)
            out[labels["com.docker.compose.service"]] = cid
        return out

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        found = []
        for kind, args in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                           ("volume", ["volume", "ls", "-q"])):
            for flt in (label, f"name={self.project}_"):
                ids = sh("docker", *args, "--filter", flt, capture=True).stdout.split()
                found += [f"{kind} {i}" for i in ids]
        return sorted(set(found))


def prune_superseded() -> None:
    """Each rebuild leaves the previous image and build stage untagged: remove those (found by
    the Dockerfile's label, so nobody else's), keeping the newest build stage as the next cache."""
    for stage, keep in (("final", 0), ("build", 1)):
        ids = sh("docker", "images", "-q", "--filter", "dangling=true", "--filter", f"label=brownout.stage={stage}",
                 capture=True).stdout.split()[keep:]  # newest first
        if ids:
            sh("docker", "rmi", *ids, check=False, capture=True)  # one still in use stays


def build_image(stack: Stack) -> None:
    stack.run("build", "-q", capture=True)
    prune_superseded()
    size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", IMAGE, capture=True).stdout)
    probe = sh("docker", "run", "--rm", "--entrypoint", "sh", IMAGE, "-c",
               "id -u; for t in gcc cc c++ make pip pip3 python3-config; do command -v $t || true; done; "
               "ls /opt/brownout/venv/bin/ | grep -E '^(pip|wheel|easy_install)' || true", capture=True).stdout.split()
    uid, tools = probe[0], probe[1:]
    if uid == "0" or tools:
        raise Failed(f"{IMAGE} runs as uid {uid} with build tools {tools}: non-root, no build tools expected")
    print(f"{IMAGE}: {size / 1e6:.0f} MB, FROM {BASE_IMAGE}, runs as uid {uid}, no compiler, make or pip")
    NOTES.append(f"image {IMAGE}: {size / 1e6:.0f} MB")


def compose_up(stack: Stack) -> None:
    stack.run("up", "-d", "--build")
    print(LEFT_OUT)
    containers = stack.containers()
    if set(containers) != SERVICES:
        raise Failed(f"services up: {sorted(containers)}, expected {sorted(SERVICES)}")
    sh(REPO / "scripts" / "wait-healthy.sh", *containers.values())


def warm_up(stack: Stack, requests: int = 40) -> None:
    """A cold stack is slow for its first requests (pools, caches, the model's first calls), as
    `brownout demo` knows: warm it through the published port before judging its baseline."""
    lines = (REPO / "experiments" / "data" / "transactions.jsonl").read_text().splitlines()[:requests]
    for line in lines:
        body = json.dumps(json.loads(line)["body"]).encode()
        request = urllib.request.Request(f"{stack.url('BROWNOUT_HTTP_PORT')}/predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise Failed(f"POST /predict through the sidecar answered {response.status}")
    print(f"{len(lines)} predictions through the sidecar's published port: 200 OK")


def experiment(stack: Stack, bin_: Path, work: Path) -> None:
    warm_up(stack)
    reports = work / "compose-reports"
    env = clean_env(BROWNOUT_TARGET=stack.url("BROWNOUT_HTTP_PORT"), BROWNOUT_ADMIN=stack.url("BROWNOUT_ADMIN_PORT"),
                    BROWNOUT_TOKEN=stack.token)
    # Its windows are 1.5 s at this time scale, so one stall of a shared CI machine would fail
    # the 300 ms p99 of the baseline; what is checked here is the path through the stack and the
    # verdict on the answers, so the latency bound is relaxed (the fault never reaches it: the
    # model API gives up on the slow feature store after 100 ms).
    result = verdict(bin_ / "brownout", "run", f"library:{EXPERIMENT}", "--time-scale", "0.3", "--quiet",
                     "--set", "steady_state.sla.latency_p99_ms=2000", "--report-dir", reports, env=env, cwd=work)
    journal = json.loads((reports / "journal.json").read_text()) if (reports / "journal.json").exists() else {}
    failed = {v["sli"] for v in journal.get("verdicts", []) if not v["ok"]}
    if result.returncode != EXPECTED_EXIT or EXPECTED_SLI not in failed:
        raise Failed(f"brownout run library:{EXPERIMENT} exited {result.returncode} with failed SLIs {sorted(failed)}; "
                     f"expected {EXPECTED_EXIT} with {EXPECTED_SLI}:\n{result.stdout[-4000:]}")
    print(f"brownout run library:{EXPERIMENT} → exit {result.returncode}, {EXPECTED_SLI} caught the fallback")


def promql(stack: Stack, query: str) -> float:
    url = f"{stack.url('PROMETHEUS_PORT')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    results = body["data"]["result"]
    return float(results[0]["value"][1]) if results else 0.0


def prometheus(stack: Stack) -> None:
    query = 'sum(brownout_faults_injected_total{job="brownout", route="feature-store"})'
    deadline = time.monotonic() + 60  # a scrape every 5 s: the last one may still be to come
    while (value := promql(stack, query)) <= 0:
        if time.monotonic() > deadline:
            raise Failed(f"Prometheus has no injections from the sidecar: {query} = {value}")
        time.sleep(2)
    up = promql(stack, 'up{job="brownout"}')
    if up != 1:
        raise Failed(f'up{{job="brownout"}} = {up}: Prometheus does not reach the sidecar')
    print(f'Prometheus: up{{job="brownout"}} = 1, {query} = {value:.0f}')


def sidecar_logs(stack: Stack) -> None:
    cid = stack.containers()["brownout"]
    lines = [ln for ln in sh("docker", "logs", cid, capture=True).stdout.splitlines() if ln.strip()]
    events = []
    for number, line in enumerate(lines, 1):
        try:
            events.append(json.loads(line))
        except ValueError:
            raise Failed(f"sidecar log line {number} is not JSON: {line[:200]}") from None
    injected = [e for e in events if e.get("event") == "fault_injected" and e.get("route") == "feature-store"]
    if not injected or not all({"fault_id", "kind", "request_id", "timestamp"} <= set(e) for e in injected):
        raise Failed(f"no complete fault_injected events for feature-store in {len(lines)} log lines")
    print(f"sidecar logs: {len(lines)} JSON lines, {len(injected)} fault_injected on feature-store "
          f"(e.g. {json.dumps(injected[0])})")


def compose_down(stack: Stack) -> None:
    stack.run("down", "-v")
    left = stack.leftovers()
    if left:
        raise Failed(f"down -v left {left}")
    print(f"down -v: no container, network or volume of {stack.project} left")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-docker", action="store_true", help="only the wheel steps (no root or dockerd needed)")
    parser.add_argument("--keep", action="store_true", help="leave the stack up at the end (then: down -v yourself)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="brownout-ship-"))
    stack: Stack | None = None
    try:
        if not args.no_docker:
            with step("base images"):
                sh(REPO / "scripts" / "base-images.sh")
        with step("wheel house"):
            sh(REPO / "scripts" / "wheelhouse.sh", *([] if args.no_docker else [BASE_IMAGE]))
        with step("fresh install"):
            bin_ = fresh_install(work)
        if not args.no_docker:
            stack = Stack()
            with step("image build"):
                build_image(stack)
            with step("compose up"):
                compose_up(stack)
            with step("experiment"):
                experiment(stack, bin_, work)
            with step("prometheus"):
                prometheus(stack)
            with step("sidecar logs"):
                sidecar_logs(stack)
            if args.keep:
                print(f"\nleft up (--keep): {' '.join(stack.compose)} down -v")
            else:
                with step("compose down"):
                    compose_down(stack)
            stack = None
            with step("fleet scale"):
                sh(sys.executable, REPO / "scripts" / "fleet_compose_check.py", "--image", IMAGE)
    except (Failed, subprocess.TimeoutExpired) as exc:
        print(f"\nship check FAILED: {exc}", file=sys.stderr)
        if stack is not None:
            stack.run("logs", "--no-color", "--tail", "30", check=False)
        return 1
    finally:
        if stack is not None and not args.keep:
            stack.run("down", "-v", check=False, capture=True)
        shutil.rmtree(work, ignore_errors=True)
        print("\nship check timings:")
        for name, seconds in TIMES:
            print(f"  {name:16s} {seconds:6.1f}s")
        print(f"  {'total':16s} {sum(t for _, t in TIMES):6.1f}s")
        for note in NOTES:
            print(f"  {note}")
    print("ship check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
