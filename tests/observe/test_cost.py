"""Cost: CPU-seconds from /proc (pidfiles) and from PromQL, energy from RAPL (a fake sysfs)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from brownout.observe.cost import CostMeter, PidfileCpu, PromCpu, per_thousand, read_proc_cpu, _with_jobs
from brownout.observe.promql import PrometheusClient
from brownout.observe.rapl import RaplEnergy, absent_reason
from tests.conftest import serve_app
from tests.observe.prometheus_fixture import PrometheusFactory

# Burns `sys.argv[1]` CPU-seconds (not wall seconds: the machine is shared) on a line from the
# parent, says "done" and waits; a bounded loop (20 s of wall time at most).
BURNER = """
import sys, time
sys.stdin.readline()
limit, deadline = float(sys.argv[1]), time.monotonic() + 20
while time.process_time() < limit and time.monotonic() < deadline:
    sum(i * i for i in range(1000))
print("done", flush=True)
sys.stdin.readline()
"""


class Burner:
    def __init__(self, pidfile: Path, cpu_s: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", BURNER, str(cpu_s)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        pidfile.write_text(f"{self.proc.pid}\n")

    def burn(self) -> None:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def test_proc_reading_matches_the_kernels_account_of_this_process() -> None:
    sum(i * i for i in range(300_000))
    times = os.times()
    mine = read_proc_cpu(os.getpid())
    assert mine is not None
    assert mine.cpu_seconds == pytest.approx(times.user + times.system, abs=0.05)
    assert read_proc_cpu(2**22 + 12345) is None  # beyond pid_max: no such process


def test_proc_stat_with_an_awkward_command_name(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    # comm may hold spaces and ')': fields are counted from the last ')'
    (tmp_path / "42" / "stat").write_text(
        "42 (we (ird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 7 3 20 0 1 0 98765 1000 10 18446744073709551615\n")
    got = read_proc_cpu(42, tmp_path)
    assert got is not None
    assert got.cpu_seconds == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))  # utime + stime; cutime/cstime not
    assert got.start_ticks == 98765


async def test_cpu_seconds_rise_under_a_cpu_heavy_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "burner.pid"
    burner = Burner(pidfile, 0.5)
    try:
        cpu = PidfileCpu([pidfile])
        assert await cpu.sample(time.time()) is None  # the start
        idle = await cpu.sample(time.time())
        burner.burn()
        busy = await cpu.sample(time.time())
    finally:
        burner.stop()
    assert idle is not None and idle < 0.1
    assert busy is not None and 0.45 <= busy <= 3.0  # 0.5 s burnt; generous for interpreter noise
    assert cpu.notes == [] and cpu.restarts == 0


async def test_a_restarted_process_keeps_the_count_going(tmp_path: Path) -> None:
    pidfile, other = tmp_path / "svc.pid", tmp_path / "gone.pid"
    first = Burner(pidfile, 0.3)
    cpu = PidfileCpu([pidfile, other])
    try:
        await cpu.sample(time.time())
        assert cpu.notes == [f"{other}: no readable pid"]
        first.burn()
    finally:
        first.stop()
    gone = await cpu.sample(time.time())  # the process died after burning; its last reading was the start
    assert gone == 0.0 and any("is not running" in n for n in cpu.notes)
    second = Burner(pidfile, 0.3)  # the restart: a new pid in the same pidfile
    try:
        second.burn()
        after = await cpu.sample(time.time())
    finally:
        second.stop()
    assert cpu.restarts == 1
    assert after is not None and 0.25 <= after <= 3.0  # the new process's CPU, all of it since its start


def test_job_matchers_join_a_selector() -> None:
    assert _with_jobs("process_cpu_seconds_total", []) == "process_cpu_seconds_total"
    assert _with_jobs("process_cpu_seconds_total", ["a", "b.c"]) == 'process_cpu_seconds_total{job=~"a|b\\\\.c"}'
    assert _with_jobs('x{instance="h:1"}', ["a"]) == 'x{instance="h:1", job=~"a"}'
    assert _with_jobs("x{}", ["a"]) == 'x{job=~"a"}'


async def _spin(url: str, seconds: float) -> int:
    """Requests through the proxy for a while (bounded in time and count)."""
    done, deadline = 0, time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and done < 20_000:
            async with session.get(url) as resp:
                await resp.read()
            done += 1
    return done


async def test_the_proxy_exports_its_process_cpu_and_promql_reads_it(
        tmp_path: Path, proxy_factory: Any, prometheus_factory: PrometheusFactory) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner, upstream = await serve_app(app)
    try:
        proxy = proxy_factory({"routes": [{"name": "api", "upstream": upstream}]})
        async with aiohttp.ClientSession() as session:
            async with session.get(proxy.admin + "/metrics") as resp:
                text = await resp.text()
        assert "process_cpu_seconds_total " in text and "process_resident_memory_bytes " in text

        pidfile = tmp_path / "proxy.pid"
        pidfile.write_text(str(proxy.process.pid))
        prom = await prometheus_factory({"brownout": proxy.admin + "/metrics"})
        await prom.wait_for_data("process_cpu_seconds_total", samples=1)
        async with PrometheusClient(prom.url) as client:
            meter = CostMeter(PromCpu(client, jobs=["brownout"]))
            local = PidfileCpu([pidfile])
            start = time.time()
            await meter.start(start)
            await local.sample(start)
            served = await _spin(proxy.url("api", "/"), 2.0)
            end = time.time()
            on_proc = await local.sample(end)
            await asyncio.sleep(2.5)  # one scrape after the end, and then some
            sample = await meter.sample(end)
            missing = await PromCpu(client, jobs=["no-such-job"]).between(start, end)
    finally:
        await runner.cleanup()
    assert served > 50
    assert on_proc is not None and on_proc > 0.05  # the proxy worked
    assert sample.cpu_seconds is not None and sample.cpu_seconds > 0.02
    assert sample.start == start and sample.end == end and sample.notes == ()
    assert missing is None


def _zone(root: Path, name: str, label: str, uj: int, max_uj: int = 1_000_000_000) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def test_rapl_sums_packages_and_dram_across_a_wrap(tmp_path: Path) -> None:
    p0 = _zone(tmp_path, "intel-rapl:0", "package-0", 5_000_000)
    _zone(tmp_path, "intel-rapl:0:0", "core", 1_000_000)           # inside package-0: not added again
    dram = _zone(tmp_path, "intel-rapl:0:1", "dram", 100_000)
    p1 = _zone(tmp_path, "intel-rapl:1", "package-1", 999_000_000)  # 1 J from wrapping
    _zone(tmp_path, "intel-rapl:2", "psys", 7_000_000)              # the whole platform: overlaps
    _zone(tmp_path, "intel-rapl-mmio:0", "package-0", 3)            # another interface: ignored
    energy = RaplEnergy(tmp_path)
    assert energy.available and energy.absent_reason is None
    assert [z.name for z in energy.zones] == ["package-0", "package-1", "dram"]
    assert energy.read() == 0.0
    (p0 / "energy_uj").write_text("7500000\n")        # +2.5 J
    (dram / "energy_uj").write_text("600000\n")       # +0.5 J
    (p1 / "energy_uj").write_text("2000000\n")        # wrapped: +1 J to the top, +2 J after
    assert energy.read() == pytest.approx(6.0)
    (p1 / "energy_uj").write_text("3000000\n")        # +1 J
    assert energy.read() == pytest.approx(7.0)


def test_rapl_psys_counts_when_there_is_no_package(tmp_path: Path) -> None:
    psys = _zone(tmp_path, "intel-rapl:0", "psys", 10)
    energy = RaplEnergy(tmp_path)
    (psys / "energy_uj").write_text("2000010\n")
    assert energy.read() == pytest.approx(2.0)


def test_rapl_absent_says_why(tmp_path: Path) -> None:
    assert "no powercap interface" in str(RaplEnergy(tmp_path / "missing").absent_reason)
    (tmp_path / "empty").mkdir()
    empty = RaplEnergy(tmp_path / "empty")
    assert empty.read() is None and "no RAPL zones" in str(empty.absent_reason)
    _zone(tmp_path / "bad", "intel-rapl:0", "package-0", 1, max_uj=0)
    assert "needs a positive range" in str(RaplEnergy(tmp_path / "bad").absent_reason)
    zone = _zone(tmp_path / "garbled", "intel-rapl:0", "package-0", 1)
    energy = RaplEnergy(tmp_path / "garbled")
    (zone / "energy_uj").write_text("lots\n")
    assert energy.read() is None and "not a number of microjoules" in str(energy.absent_reason)
    # Readable only by root (the kernel's default since 5.10): the reason says so and how to fix it.
    text = absent_reason(zone / "energy_uj", PermissionError(13, "Permission denied"))
    assert "readable only by root" in text and "chmod o+r" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file; the message is tested above")
def test_rapl_unreadable_counter_as_a_user(tmp_path: Path) -> None:
    zone = _zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (zone / "energy_uj").chmod(0)
    energy = RaplEnergy(tmp_path)
    assert energy.read() is None and "readable only by root" in str(energy.absent_reason)


def test_this_machine_gives_energy_or_a_reason() -> None:
    energy = RaplEnergy()
    assert (energy.read() is not None) == energy.available
    assert energy.available or len(str(energy.absent_reason)) > 20


async def test_the_meter_joins_cpu_and_energy_per_interval(tmp_path: Path) -> None:
    pidfile = tmp_path / "burner.pid"
    p0 = _zone(tmp_path / "sys", "intel-rapl:0", "package-0", 0)
    burner = Burner(pidfile, 0.3)
    try:
        meter = CostMeter(PidfileCpu([pidfile]), RaplEnergy(tmp_path / "sys"))
        await meter.start(100.0)
        burner.burn()
        (p0 / "energy_uj").write_text("12000000\n")
        first = await meter.sample(110.0)
        second = await meter.sample(120.0)
    finally:
        burner.stop()
    assert (first.start, first.end, second.start, second.end) == (100.0, 110.0, 110.0, 120.0)
    assert first.cpu_seconds is not None and first.cpu_seconds >= 0.25 and first.joules == pytest.approx(12.0)
    assert second.joules == 0.0 and second.cpu_seconds is not None and second.cpu_seconds < 0.1
    absent = CostMeter(PidfileCpu([pidfile]), RaplEnergy(tmp_path / "nothing"))
    await absent.start()
    sample = await absent.sample()
    assert sample.joules is None and "no powercap interface" in str(sample.energy_absent)
    assert per_thousand(first.cpu_seconds, 2000) == pytest.approx(first.cpu_seconds / 2)
    assert per_thousand(1.0, 0) is None and per_thousand(None, 10) is None


def test_cost_spec_picks_the_source(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from brownout.experiment.cost import CostSpec
    from brownout.observe.cost import cpu_source

    prom = CostSpec.model_validate({"prometheus": "http://127.0.0.1:9090/", "jobs": ["model-api"],
                                    "auth": {"bearer_token": "t"}})
    source = cpu_source(prom)
    assert isinstance(source, PromCpu) and source.client.url == "http://127.0.0.1:9090"
    assert source.query(5) == 'sum(increase(process_cpu_seconds_total{job=~"model\\\\-api"}[5000ms]))'
    local = cpu_source(CostSpec.model_validate({}), default_pidfiles=[tmp_path / "a.pid"])
    assert isinstance(local, PidfileCpu) and list(local.pidfiles) == [tmp_path / "a.pid"]
    given = cpu_source(CostSpec.model_validate({"pidfiles": [str(tmp_path / "b.pid")]}), [tmp_path / "a.pid"])
    assert isinstance(given, PidfileCpu) and list(given.pidfiles) == [tmp_path / "b.pid"]
    for bad, message in (({"prometheus": "http://h", "pidfiles": ["x"]}, "not both"),
                         ({"jobs": ["a"]}, "need 'prometheus'"),
                         ({"prometheus": "http://h", "query": "rate(x[1m])"}, "counter selector")):
        with pytest.raises(ValidationError, match=message):
            CostSpec.model_validate(bad)
