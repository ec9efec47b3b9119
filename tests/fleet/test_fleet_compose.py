"""deploy/fleet-compose.yaml (scaled for real by scripts/fleet_compose_check.py in the ship check):
a sidecar service that can be scaled, the same image as the stack, a config the proxy reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from proxy.config import load_config

REPO = Path(__file__).resolve().parents[2]


def test_the_sidecar_service_scales_without_host_ports_and_its_config_is_valid() -> None:
    fleet = yaml.safe_load((REPO / "deploy" / "fleet-compose.yaml").read_text())["services"]
    stack = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    sidecar = fleet["sidecar"]
    assert "ports" not in sidecar and "container_name" not in sidecar  # what keeps replicas apart
    assert sidecar["image"].endswith(":-" + stack["brownout"]["image"] + "}")  # ${BROWNOUT_IMAGE:-brownout:dev}
    assert sidecar["command"] == stack["brownout"]["command"]
    source, target, _ = sidecar["volumes"][0].split(":")
    config = load_config(REPO / "deploy" / source, env={"BROWNOUT_TOKEN": "t"})
    assert target == "/etc/brownout/brownout.yaml" and config.admin.token == "t"
    assert str(config.admin.listen).endswith(":8475") and fleet["probe"]["profiles"] == ["probe"]


def test_the_ship_check_scales_it() -> None:
    ship = (REPO / "scripts" / "ship_check.py").read_text()
    assert 'step("fleet scale")' in ship and "fleet_compose_check.py" in ship
    check = (REPO / "scripts" / "fleet_compose_check.py").read_text()
    assert '"--scale", f"sidecar={REPLICAS}"' in check and "REPLICAS = 3" in check and "--discover" in check
