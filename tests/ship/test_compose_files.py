"""The compose files, the Dockerfile, the README's staging quick start and the ship check agree.

The stack itself is brought up by scripts/ship_check.py (run by .ci/run); these tests keep the
files it runs, and what the README tells users to type, from drifting apart.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
IMAGE_SERVICES = {"model-api", "feature-store", "gpu-worker-0", "gpu-worker-1", "brownout", "brownout-gpu-0",
                  "brownout-gpu-1"}


def _services(name: str = "docker-compose.yml") -> dict[str, Any]:
    return yaml.safe_load((REPO / name).read_text())["services"]


def _readme_staging() -> tuple[str, str]:
    """(the prose of the README's staging section, its sh block)."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Staging: the compose stack", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the staging section has a sh block"
    return section, block.group(1)


def _base_images() -> dict[str, str]:
    script = (REPO / "scripts" / "base-images.sh").read_text()
    return dict(re.findall(r"^(BASE_IMAGE|SERVICES_IMAGE)=\$\{\w+:-([^}]+)\}", script, re.M))


def test_every_service_has_a_healthcheck_on_the_port_it_serves() -> None:
    services = _services()
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in IMAGE_SERVICES:
        command, test = services[name]["command"], services[name]["healthcheck"]["test"]
        port = "8475" if name.startswith("brownout") else command[command.index("--port") + 1]
        assert test[:3] == ["CMD", "python", "-c"] and test[-1] == f"http://127.0.0.1:{port}/healthz", name
    assert "9090/-/healthy" in services["prometheus"]["healthcheck"]["test"][-1]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
async def test_the_python_probe_passes_only_on_a_2xx(status: int | None, healthy: bool) -> None:
    probe = _services()["brownout"]["healthcheck"]["test"][3]
    port = free_port()
    runner = None
    if status is not None:
        async def healthz(_: web.Request) -> web.Response:
            return web.Response(status=status)

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", probe, f"http://127.0.0.1:{port}/healthz",
                                                    stderr=asyncio.subprocess.DEVNULL)
        assert (await asyncio.wait_for(proc.wait(), 10) == 0) is healthy
    finally:
        if runner is not None:
            await runner.cleanup()


def test_the_ci_override_swaps_only_what_needs_a_registry() -> None:
    main, ci = _services(), _services("docker-compose.ci.yml")
    images = _base_images()
    assert set(ci) == IMAGE_SERVICES | {"redis", "prometheus", "grafana"}
    for name in IMAGE_SERVICES:
        assert ci[name] == {"build": {"context": ".", "args": {"BASE": images["BASE_IMAGE"]}}}, name
        assert main[name]["image"] == "brownout:dev" and main[name]["build"] == "."
    for name in ("redis", "prometheus"):
        assert ci[name]["image"] == images["SERVICES_IMAGE"] and set(ci[name]) <= {"image", "user", "command"}
    assert ci["grafana"] == {"profiles": ["needs-a-registry"]}  # left out, with the reason in the file
    assert "command" not in ci["redis"]  # Debian's redis-server takes the main file's flags
    config_mount = next(v for v in main["prometheus"]["volumes"] if "prometheus.yml" in v).split(":")[1]
    assert f"--config.file={config_mount}" in ci["prometheus"]["command"]
    data_mount = next(v for v in main["prometheus"]["volumes"] if v.startswith("prometheus-data:")).split(":")[1]
    assert f"--storage.tsdb.path={data_mount}" in ci["prometheus"]["command"]


def test_the_dockerfile_builds_from_any_base_and_copies_only_what_dockerignore_lets_through() -> None:
    lines = [ln for ln in (REPO / "Dockerfile").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "ARG BASE=python:3.11-slim"
    assert [ln.split()[1] for ln in lines if ln.startswith("FROM")] == ["${BASE}", "${BASE}"]
    user = [ln for ln in lines if ln.startswith("USER")]
    assert user and user[-1].split()[1].split(":")[0] not in {"0", "root"}
    allowed = {ln[1:].rstrip("/") for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.startswith("!")}
    sources = [src.rstrip("/") for ln in lines if ln.startswith("COPY") and "--from" not in ln
               for src in ln.split()[1:-1]]
    assert sources and set(sources) <= allowed, set(sources) - allowed
    assert (REPO / "deploy" / "wheelhouse").is_dir()  # COPY needs it even when it holds no wheel


def test_the_readme_quick_start_matches_the_files_and_the_ship_check() -> None:
    prose, block = _readme_staging()
    commands = [ln.split("#")[0].strip() for ln in block.splitlines() if ln.strip()]
    # The one compose() line picks Compose v2, else docker-compose 1.29; the rest use only
    # subcommands both have, and the ones the ship check runs with 1.29 in CI.
    assert "docker compose" in commands[0] and "docker-compose" in commands[0]
    used = {" ".join(c.split()[1:]) for c in commands[1:] if c.startswith("compose ")}
    used |= {m for c in commands for m in re.findall(r"\$\(compose ([^)]*)\)", c)}
    check = (REPO / "scripts" / "ship_check.py").read_text()
    ran = {" ".join(filter(None, m)) for m in re.findall(r'"(up|ps|down)", "(-d|-q|-v)"(?:, "(--build)")?', check)}
    assert used == ran == {"up -d --build", "ps -q", "down -v"}

    wait = REPO / "scripts" / "wait-healthy.sh"
    assert any(c.startswith("scripts/wait-healthy.sh $(compose ps -q)") for c in commands)
    assert wait.stat().st_mode & 0o111 and "scripts/wait-healthy.sh" in check

    compose_text = (REPO / "docker-compose.yml").read_text()
    assert "${BROWNOUT_TOKEN:?" in compose_text and any(c.startswith("export BROWNOUT_TOKEN=") for c in commands)
    [run] = [c for c in commands if " run library:" in c]
    name = run.split("library:")[1].split()[0]
    assert (REPO / "experiments" / f"{name}.yaml").exists()
    assert f'EXPERIMENT = "{name}"' in check and 'IMAGE = "brownout:dev"' in check and "`brownout:dev`" in prose

    # Every published port the README names, with its variable, is the compose file's default.
    documented = re.findall(r"`(\d+)`[^()]*\(`(\w+_PORT)`", prose)
    defaults = dict(re.findall(r"\$\{(\w+_PORT):-(\d+)\}", compose_text))
    assert len(documented) == 7 and {var: port for port, var in documented} == {
        k: v for k, v in defaults.items() if k != "TOXIPROXY_PORT"}
    # The library's experiments find the stack on those ports without being told.
    experiment = (REPO / "experiments" / f"{name}.yaml").read_text()
    assert f"${{BROWNOUT_TARGET:-http://127.0.0.1:{defaults['BROWNOUT_HTTP_PORT']}}}" in experiment
    assert f"${{BROWNOUT_ADMIN:-http://127.0.0.1:{defaults['BROWNOUT_ADMIN_PORT']}}}" in experiment


def test_wait_healthy_refuses_an_empty_list() -> None:
    """`$(compose ps -q)` is empty when the stack is not up: say so rather than wait for nothing."""
    result = subprocess.run([str(REPO / "scripts" / "wait-healthy.sh")], capture_output=True, text=True, timeout=10)
    assert result.returncode == 1 and "no containers given" in result.stderr
