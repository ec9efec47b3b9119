"""Processes, tools and measurements shared by the benchmarks.

Everything runs on 127.0.0.1. The server under test is pinned to ``SUT_CPU``; the load
generator (wrk or our Python clients) and the upstreams share ``LOAD_CPU``. Every process
started here is stopped by ``Stack.close`` and every measurement is bounded in time.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"  # the tcp benchmark's C reference relay
MITM_VENV = Path.home() / ".cache" / "brownout-bench" / "mitm-venv"
_CPUS = sorted(os.sched_getaffinity(0))
SUT_CPU = _CPUS[0]
LOAD_CPU = _CPUS[1] if len(_CPUS) > 1 else _CPUS[0]
MIB = 1024 * 1024
JSON_300 = json.dumps({"id": "cmpl-bench", "object": "text_completion", "model": "bench-1",
                       "choices": [{"index": 0, "text": "x" * 129, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 7}}, separators=(",", ":"))


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:g}s")


# -- tools ------------------------------------------------------------------------------

def ensure_debian_tools() -> None:
    """nginx, its stream module and wrk from Debian when missing (needs root)."""
    missing = [pkg for pkg, exe in (("nginx", NGINX), ("wrk", "wrk"), ("libnginx-mod-stream", STREAM_MODULE))
               if not shutil.which(exe) and not os.path.exists(exe)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"missing {', '.join(missing)}: install them (apt-get install {' '.join(missing)}) or run as root")
    print(f"installing {', '.join(missing)} with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def mitmdump() -> str | None:
    """mitmdump, from PATH or a private venv (so its pins never touch the project's venv)."""
    found = shutil.which("mitmdump") or (str(VENV_BIN / "mitmdump") if (VENV_BIN / "mitmdump").exists() else None)
    if found:
        return found
    exe = MITM_VENV / "bin" / "mitmdump"
    if not exe.exists():
        print(f"installing mitmproxy into {MITM_VENV} ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(MITM_VENV)], check=True)
            subprocess.run([str(MITM_VENV / "bin" / "pip"), "install", "-q", "mitmproxy"], check=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"mitmproxy unavailable ({exc}); skipping it", flush=True)
            return None
    return str(exe)


# -- processes ----------------------------------------------------------------------------

class Stack:
    """The processes of one benchmark run; ``close`` stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.chmod(0o755)  # nginx workers run as nobody and serve files from here
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], cpu: int, port: int | None = None, name: str = "proc") -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "wb") as log:  # the child keeps its own copy of the fd
            proc = subprocess.Popen([*pin(cpu), *argv], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.procs.append(proc)
        if port is not None:
            try:
                wait_listening(port)
            except RuntimeError:
                raise RuntimeError(f"{name} did not start; see {self.workdir / (name + '.log')}:\n"
                                   + (self.workdir / f"{name}.log").read_text()[-2000:]) from None
        return proc

    def nginx(self, name: str, cpu: int, port: int, body: str, http_extra: str = "") -> subprocess.Popen[bytes]:
        """One nginx worker; ``body`` is the server block's location section."""
        d = self.workdir / name
        d.mkdir()
        conf = d / "nginx.conf"
        conf.write_text(textwrap.dedent(f"""
            worker_processes 1;
            daemon off;
            pid {d}/nginx.pid;
            error_log {d}/error.log warn;
            events {{ worker_connections 8192; }}
            worker_rlimit_nofile 20000;
            http {{
                access_log off;
                sendfile on;
                tcp_nopush on;
                keepalive_requests 100000000;
                keepalive_timeout 120s;
                client_body_temp_path {d};
                proxy_temp_path {d};
                fastcgi_temp_path {d};
                uwsgi_temp_path {d};
                scgi_temp_path {d};
                {http_extra}
                server {{
                    listen 127.0.0.1:{port} backlog=4096;
                    {body}
                }}
            }}
        """))
        return self.spawn([NGINX, "-c", str(conf), "-p", str(d)], cpu, port, name)

    def brownout(self, name: str, cpu: int, routes: list[dict[str, object]], extra: str = "") -> int:
        """``brownout proxy --config FILE`` as users start it (``extra``: more top-level config lines);
        returns the admin port."""
        admin = free_port()
        lines = [f"admin: {{listen: '127.0.0.1:{admin}'}}", "fault_ttl: {default: 1h, max: 1h}", *extra.splitlines(),
                 "routes:"]
        lines += [f"  - {json.dumps(r)}" for r in routes]
        conf = self.workdir / f"{name}.yaml"
        conf.write_text("\n".join(lines) + "\n")
        self.spawn([str(VENV_BIN / "brownout"), "proxy", "--config", str(conf), "--log-level", "warning"], cpu, admin, name)
        for route in routes:
            wait_listening(int(str(route["listen"]).rsplit(":", 1)[1]))
        return admin

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def admin_post(admin_port: int, path: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(f"http://127.0.0.1:{admin_port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def add_idle_faults(admin_port: int, route: str, count: int = 10) -> None:
    """``count`` latency faults whose match can never apply to the benchmark's paths."""
    for i in range(count):
        admin_post(admin_port, "/faults", {"type": "latency", "route": route, "params": {"delay_ms": 100},
                                           "match": {"path": f"/never/{i}/*"}, "ttl": "1h"})


def add_admitting_rate_limit(admin_port: int, route: str) -> None:
    """A ``rate_limit`` on every request whose budget never runs out: the cost of keeping it."""
    admin_post(admin_port, "/faults", {"type": "rate_limit", "route": route, "ttl": "1h",
                                       "params": {"requests_per_minute": 1e9}})


def add_zero_latency(admin_port: int, route: str) -> None:
    """A ``latency`` of 0 ms on every request: the generic cost of a fault selected for each one."""
    admin_post(admin_port, "/faults", {"type": "latency", "route": route, "ttl": "1h", "params": {"delay_ms": 0}})


def rss_kb(pid: int) -> int:
    """Resident set of ``pid`` and its children (nginx master + worker), in KiB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time of ``pid`` and (by default) its children so far (robust to a busy machine)."""
    return sum(_process_cpu_seconds(p) for p in [pid, *(_children(pid) if children else ())])


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``'s main thread alone (the proxy's event loop, without its export thread)."""
    return _process_cpu_seconds(pid, thread=True)


def _process_cpu_seconds(pid: int, thread: bool = False) -> float:
    """CPU time of a process (all its threads) or of its main thread, in ns steps, where /proc's
    ``stat`` counts in 10 ms ticks (alone ~1 % of a 3 s benchmark run): a process's CPU clock, which
    Linux lets any process read (clock id ``~pid << 3 | CPUCLOCK_SCHED``), and a thread's
    ``schedstat`` (time on a CPU, in ns). 0 when it is gone."""
    try:
        if thread:
            return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0]) / 1e9
        return time.clock_gettime(((~pid) << 3) | 2)
    except (OSError, IndexError, ValueError):  # gone, or a kernel without them: the ticks
        return _stat_cpu_seconds(f"/proc/{pid}/task/{pid}/stat" if thread else f"/proc/{pid}/stat")


def _stat_cpu_seconds(stat: str) -> float:
    """utime + stime of one /proc ``stat`` file, in seconds (0 when the process is gone)."""
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def children(pid: int) -> list[int]:
    """Every process below ``pid`` (a proxy's recording writer, nginx's workers)."""
    return _children(pid)


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids] + [g for k in kids for g in _children(int(k))]


# -- wrk ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    bytes_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # CPU time of the server under test per request, its child processes included (nan when not measured)
    own_cpu_us: float = float("nan")  # the same, of its main process alone (Brownout without its recording writer)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def wrk(url: str, connections: int, seconds: float, pid: int | None = None, cpu: int = LOAD_CPU) -> WrkResult:
    """One wrk run (one thread, on the load CPU); ``pid``: the server whose CPU time to count."""
    cmd = [*pin(cpu), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s", url]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    own_before = cpu_seconds(pid, children=False) if pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    cpu_used = cpu_seconds(pid) - cpu_before if pid else float("nan")
    own_used = cpu_seconds(pid, children=False) - own_before if pid else float("nan")
    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    reqs = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    tps = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not (reqs and rps and tps):
        raise RuntimeError(f"wrk gave no result for {url}:\n{out}")
    requests = int(reqs.group(1))
    return WrkResult(requests, float(rps.group(1)), float(tps.group(1)) * _BYTES[tps.group(2)], pct("50"), pct("99"),
                     errors + (int(non2xx.group(1)) if non2xx else 0), cpu_used / max(1, requests) * 1e6,
                     own_used / max(1, requests) * 1e6)


def median(values: list[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")
