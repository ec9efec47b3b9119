"""deploy/kubernetes/: valid against the Kubernetes schemas (offline, kubernetes-validate bundles
them), and in step with docker-compose.yml and the compose sidecar's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from brownout.experiment import load_experiment
from proxy.config import parse_config
from proxy.yamlsource import load_yaml_text

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
# In a pod the sidecar shares localhost with the model API: compose's `brownout` host is 127.0.0.1 there.
HOSTS = {"brownout": "127.0.0.1", "model-api": "127.0.0.1"}


def _docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _find(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _containers() -> dict[str, dict[str, Any]]:
    """Every container of the Deployments, by name (the model-api pod has two)."""
    return {c["name"]: c for d in _docs() if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_a_manifest_with_a_mistake_is_refused() -> None:
    bad = _find("Deployment", "model-api")
    bad = {**bad, "spec": {**bad["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def _rewritten(arg: str) -> str:
    parts = urlsplit(arg)
    if parts.scheme and parts.hostname in HOSTS:
        return arg.replace(f"//{parts.hostname}:", f"//{HOSTS[parts.hostname]}:", 1)
    return arg


def test_each_service_runs_what_compose_runs() -> None:
    compose, containers = _compose(), _containers()
    for name in ("model-api", "feature-store", "gpu-worker", "redis", "brownout"):
        service, container = compose[name], containers[name]
        assert container["image"] == service["image"], name  # same image name and tag
        assert container["command"] == [_rewritten(a) for a in service["command"]], name
        assert {e["name"] for e in container.get("env", [])} == set(service.get("environment", {})), name
        served = {int(p.rsplit(":", 1)[1]) for p in service.get("ports", [])}  # the container side of host:port
        if "--port" in service["command"]:
            served.add(int(service["command"][service["command"].index("--port") + 1]))
        ports = {p["containerPort"] for p in container["ports"]}
        assert served <= ports | {8474}, (name, served, ports)  # the Toxiproxy API stays on the pod's loopback
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        assert container["readinessProbe"] and container["livenessProbe"], name
    sidecar = containers["brownout"]
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8475}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8475}
    token = sidecar["env"][0]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "brownout-admin-token", "key": "token"}


def test_the_sidecar_config_has_the_compose_sidecars_routes() -> None:
    text = _find("ConfigMap", "brownout-sidecar-config")["data"]["brownout.yaml"]
    k8s = yaml.safe_load(text)
    compose = yaml.safe_load((REPO / "deploy" / "brownout-compose.yaml").read_text())
    assert set(k8s) == set(compose) and set(k8s["admin"]) == set(compose["admin"])
    assert set(k8s["toxiproxy_api"]) == set(compose["toxiproxy_api"]) and k8s["fault_ttl"] == compose["fault_ttl"]

    def routes(config: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        return [(r["name"], r["kind"], r["listen"].rsplit(":", 1)[1], r["upstream"].rsplit(":", 1)[1])
                for r in config["routes"]]

    assert routes(k8s) == routes(compose)  # names, kinds, listen ports and upstream ports
    config = parse_config(load_yaml_text(text, "brownout.yaml", {"BROWNOUT_TOKEN": "t"}))  # the proxy reads it
    assert config.admin.token == "t"


def test_the_headless_service_finds_every_sidecar_and_the_job_discovers_it(tmp_path: Path) -> None:
    headless = _find("Service", "brownout-sidecars")
    deployment = _find("Deployment", "model-api")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    [port] = headless["spec"]["ports"]
    assert port["port"] == 8475 and port["targetPort"] == "admin"

    job = _find("Job", "brownout-experiment")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["brownout", "run", "/experiments/fleet-feature-store.yaml"]
    assert container["image"] == _compose()["brownout"]["image"]
    files = _find("ConfigMap", "brownout-experiments")["data"]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    experiment = load_experiment(tmp_path / "fleet-feature-store.yaml", env={"BROWNOUT_TOKEN": "t"})
    [group] = experiment.proxies
    assert group.discover == "http://brownout-sidecars:8475" and group.token == "t"
    [step] = experiment.method
    assert step.targets.mode == "one" and experiment.safety.max_targets_percent < 100
    assert urlsplit(experiment.target.url).hostname == "model-api"
    api = _find("Service", "model-api")
    assert api["spec"]["ports"][0]["port"] == urlsplit(experiment.target.url).port
