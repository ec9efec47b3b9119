"""HTTP pass-through, side by side: direct, nginx, Brownout (0 and 10 idle faults, and a rate_limit
that admits everything), mitmproxy.

One upstream nginx (on the load CPU, next to wrk) serves a 300-byte JSON and a 1 MiB file.
Each proxy under test is pinned to the other CPU. The runs are interleaved (run 1 of every
target, then run 2 ...), so a noisy neighbour hits every target alike, and medians are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.harness import (
    JSON_300,
    LOAD_CPU,
    MIB,
    SUT_CPU,
    Stack,
    WrkResult,
    add_admitting_rate_limit,
    add_idle_faults,
    free_port,
    median,
    mitmdump,
    wrk,
)


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    connections: int


WORKLOADS = (Workload("json c8", "/json", 8), Workload("json c64", "/json", 64), Workload("1 MiB c8", "/1m", 8),
             Workload("json c1", "/json", 1))  # c1: the latency a request pays, without queueing


@dataclass(frozen=True)
class HttpRow:
    target: str
    workload: str
    rps: float
    mib_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # CPU of the server under test per request (nan for direct)
    runs: int


def start_targets(stack: Stack) -> dict[str, tuple[int, int | None]]:
    """Upstream plus every proxy; target name → (port, pid of the server under test)."""
    up = free_port()
    (stack.workdir / "www").mkdir()
    (stack.workdir / "www" / "1m").write_bytes(bytes(range(256)) * (MIB // 256))
    stack.nginx("upstream", LOAD_CPU, up, f"""
        location = /json {{ default_type application/json; return 200 '{JSON_300}'; }}
        location / {{ root {stack.workdir / 'www'}; }}""")
    targets: dict[str, tuple[int, int | None]] = {"direct": (up, None)}

    ngx = free_port()
    # nginx reuses upstream connections only through an upstream{} block with keepalive.
    stack.nginx("nginx-proxy", SUT_CPU, ngx, """
        location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
                     proxy_buffers 16 64k; proxy_buffer_size 64k; proxy_max_temp_file_size 0; }""",
                http_extra=f"upstream up {{ server 127.0.0.1:{up}; keepalive 256; }}")
    targets["nginx"] = (ngx, stack.procs[-1].pid)

    for name in ("brownout", "brownout+10 faults", "brownout+rate_limit"):
        port = free_port()
        admin = stack.brownout(name.replace("+", "-").replace(" ", "-").replace("_", "-"), SUT_CPU,
                               [{"name": "bench", "kind": "http", "listen": f"127.0.0.1:{port}",
                                 "upstream": f"http://127.0.0.1:{up}"}])
        if name == "brownout+10 faults":
            add_idle_faults(admin, "bench", 10)
        elif name == "brownout+rate_limit":  # every request selected, counted and answered with its headers
            add_admitting_rate_limit(admin, "bench")
        targets[name] = (port, stack.procs[-1].pid)

    exe = mitmdump()
    if exe:
        port = free_port()
        stack.spawn([exe, "-q", "--mode", f"reverse:http://127.0.0.1:{up}", "--listen-host", "127.0.0.1",
                     "--listen-port", str(port)], SUT_CPU, port, "mitmproxy")
        targets["mitmproxy (Python peer)"] = (port, stack.procs[-1].pid)
    return targets


def check_byte_exact(targets: dict[str, tuple[int, int | None]]) -> dict[str, bool]:
    """The proxies must return exactly the upstream's bytes."""
    import urllib.request

    out = {}
    for name, (port, _) in targets.items():
        ok = True
        for path in ("/json", "/1m"):
            want = urllib.request.urlopen(f"http://127.0.0.1:{targets['direct'][0]}{path}", timeout=10).read()
            got = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read()
            ok = ok and got == want
        out[name] = ok
    return out


def run(stack: Stack, runs: int, seconds: float) -> tuple[list[HttpRow], dict[str, bool]]:
    targets = start_targets(stack)
    exact = check_byte_exact(targets)
    for port, _ in targets.values():  # warm pools, caches and the JIT-free interpreters alike
        wrk(f"http://127.0.0.1:{port}/json", 64, 1)
    samples: dict[tuple[str, str], list[WrkResult]] = {}
    for _ in range(runs):
        for w in WORKLOADS:
            for name, (port, pid) in targets.items():
                samples.setdefault((name, w.name), []).append(
                    wrk(f"http://127.0.0.1:{port}{w.path}", w.connections, seconds, pid))
    rows = []
    for (name, wname), results in samples.items():
        rows.append(HttpRow(
            target=name, workload=wname, rps=median([r.rps for r in results]),
            mib_s=median([r.bytes_per_s / MIB for r in results]), p50_ms=median([r.p50_ms for r in results]),
            p99_ms=median([r.p99_ms for r in results]), errors=sum(r.errors for r in results),
            cpu_us=median([r.cpu_us for r in results]), runs=len(results),
        ))
    return rows, exact
