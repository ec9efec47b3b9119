"""deploy/kubernetes/: valid against the Kubernetes schemas (offline, kubernetes-validate bundles
them), and in step with docker-compose.yml and the compose sidecars' configs.

Each compose service is one container of a workload; compose's numbered replicas of the GPU
worker and of its sidecar are the pods of one StatefulSet. Hosts differ only as documented in
``HOSTS``: a sidecar shares its pod's localhost with the service it fronts, and each GPU sidecar
is reached by its pod's name through the headless Service that names the StatefulSet's pods.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from brownout.experiment import load_experiment
from proxy.addresses import parse_host_port
from proxy.config import ProxyConfig, load_config, parse_config
from proxy.yamlsource import load_yaml_text

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
WORKLOADS = ("Deployment", "StatefulSet")
CONFIG_MOUNT = "/etc/brownout"
# compose host → its name in the cluster (hosts not listed keep their name: a Service of it)
HOSTS = {
    "brownout": "127.0.0.1", "model-api": "127.0.0.1",            # the model-api pod's sidecar and API
    "gpu-worker-0": "127.0.0.1", "gpu-worker-1": "127.0.0.1",      # a GPU pod's worker, for its sidecar
    "brownout-gpu-0": "gpu-worker-0.gpu-sidecars", "brownout-gpu-1": "gpu-worker-1.gpu-sidecars",
}
# compose service → (workload, container)
CONTAINERS = {
    "model-api": ("model-api", "model-api"), "brownout": ("model-api", "brownout"),
    "feature-store": ("feature-store", "feature-store"), "redis": ("redis", "redis"),
    "gpu-worker-0": ("gpu-worker", "gpu-worker"), "gpu-worker-1": ("gpu-worker", "gpu-worker"),
    "brownout-gpu-0": ("gpu-worker", "brownout"), "brownout-gpu-1": ("gpu-worker", "brownout"),
}
NOT_DEPLOYED = {"toxiproxy", "prometheus", "grafana"}  # a side-by-side tool and the compose-only monitoring
PROBE_ACTIONS = ("httpGet", "exec", "tcpSocket", "grpc")
UNITS = {"m": 1e-3, "": 1.0, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _find(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _workloads() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs() if d["kind"] in WORKLOADS}


def _pod(workload: str) -> dict[str, Any]:
    spec: dict[str, Any] = _workloads()[workload]["spec"]["template"]["spec"]
    return spec


def _containers() -> dict[tuple[str, str], dict[str, Any]]:
    """Every container of every workload, by (workload, container)."""
    return {(name, c["name"]): c for name in _workloads() for c in _pod(name)["containers"]}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def _rewritten(arg: str) -> str:
    """A compose argument as the cluster spells it: each URL's host moved as HOSTS says."""
    def one(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme and parts.hostname in HOSTS:
            return url.replace(f"//{parts.hostname}:", f"//{HOSTS[parts.hostname]}:", 1)
        return url
    return ",".join(one(u) for u in arg.split(","))


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _sidecar_config(workload: str, container: dict[str, Any], env: dict[str, str]) -> tuple[str, ProxyConfig]:
    """The ConfigMap a sidecar container mounts, and the config the proxy reads from it."""
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == CONFIG_MOUNT]
    [volume] = [v for v in _pod(workload)["volumes"] if v["name"] == mount["name"]]
    text = _find("ConfigMap", volume["configMap"]["name"])["data"]["brownout.yaml"]
    return text, parse_config(load_yaml_text(text, "brownout.yaml", env))


def _k8s_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "t") for e in container.get("env", [])}


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: "t" if str(v).startswith("${") else str(v) for k, v in service.get("environment", {}).items()}


def _seconds(text: str) -> int:
    assert text.endswith("s"), text
    return int(text[:-1])


def _quantity(text: str | int) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text)).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def _probe_action(test: list[str]) -> dict[str, Any]:
    """Compose's healthcheck test as the Kubernetes probe action that checks the same thing."""
    if test[0] == "CMD-SHELL":
        return {"exec": {"command": ["sh", "-c", test[1]]}}
    assert test[:3] == ["CMD", "python", "-c"], test  # the demo images' probe: GET the URL
    url = urlsplit(test[4])
    assert url.hostname == "127.0.0.1", test
    return {"httpGet": {"path": url.path, "port": url.port}}


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_a_manifest_with_a_mistake_is_refused() -> None:
    bad = _find("StatefulSet", "gpu-worker")
    bad = {**bad, "spec": {**bad["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def test_every_compose_service_is_one_container_and_every_container_one_service() -> None:
    compose, containers = _compose(), _containers()
    assert set(CONTAINERS) == set(compose) - NOT_DEPLOYED
    assert set(CONTAINERS.values()) == set(containers)
    workloads = _workloads()
    for key in set(CONTAINERS.values()):  # compose's numbered replicas are the workload's replicas
        replicas = workloads[key[0]]["spec"]["replicas"]
        if key[0] == "model-api":
            assert replicas > 1  # scaled out: the fleet the experiments pick from
        else:
            assert replicas == sum(v == key for v in CONTAINERS.values()), key


def test_each_service_runs_what_compose_runs() -> None:
    compose, containers = _compose(), _containers()
    for name, key in CONTAINERS.items():
        service, container = compose[name], containers[key]
        assert container["image"] == service["image"], name  # same image name and tag
        command = service["command"]
        assert container["command"] == [_rewritten(a) for a in command], name

        env = {e["name"]: e for e in container.get("env", [])}
        assert set(env) == set(service.get("environment", {})), name
        for var, value in service.get("environment", {}).items():
            if str(value).startswith("${"):  # a secret set at `up` time: from the Secret in the cluster
                assert env[var]["valueFrom"] == {"secretKeyRef": {"name": "brownout-admin-token", "key": "token"}}
            else:
                assert env[var]["value"] == _rewritten(str(value)), (name, var)

        # The container's ports: what its command serves, and its sidecar config's pod-network listeners.
        ports = {p["containerPort"] for p in container.get("ports", [])}
        served, loopback = set(), set()
        if "--port" in command:
            served.add(int(_flag(command, "--port")))
        if command[:2] == ["brownout", "proxy"]:
            _, config = _sidecar_config(key[0], container, _k8s_env(container))
            listeners = [config.admin.address, *(r.address for r in config.routes)]
            listeners += [] if config.toxiproxy_api is None else [parse_host_port(config.toxiproxy_api.listen)]
            served |= {a.port for a in listeners if not a.is_loopback}
            loopback |= {a.port for a in listeners if a.is_loopback}
        assert ports == served, (name, ports, served)
        published = {int(p.rsplit(":", 1)[1]) for p in service.get("ports", [])}  # the container side of host:port
        assert published <= ports | loopback, (name, published)  # the Toxiproxy API stays on the pod's loopback

        health = service["healthcheck"]
        for probe in (container["readinessProbe"], container["livenessProbe"]):
            assert {k: v for k, v in probe.items() if k in PROBE_ACTIONS} == _probe_action(health["test"]), name
            assert probe["timeoutSeconds"] == _seconds(health["timeout"]), name
        assert container["readinessProbe"]["periodSeconds"] == _seconds(health["interval"]), name

        resources = container["resources"]
        for kind in ("cpu", "memory"):
            assert 0 < _quantity(resources["requests"][kind]) <= _quantity(resources["limits"][kind]), (name, kind)


def test_each_sidecar_config_has_its_compose_sidecars_routes() -> None:
    compose, containers = _compose(), _containers()
    services = {d["metadata"]["name"] for d in _docs() if d["kind"] == "Service"}
    sidecars = [n for n, s in compose.items() if s.get("command", [])[:2] == ["brownout", "proxy"]]
    assert set(sidecars) == {"brownout", "brownout-gpu-0", "brownout-gpu-1"}
    for name in sidecars:
        service, key = compose[name], CONTAINERS[name]
        [mount] = [v for v in service["volumes"] if v.endswith(f":{CONFIG_MOUNT}/brownout.yaml:ro")]
        path = REPO / mount.split(":")[0]
        text, k8s = _sidecar_config(key[0], containers[key], _k8s_env(containers[key]))
        in_compose = load_config(path, {"BROWNOUT_TOKEN": "t", **_compose_env(service)})
        raw_k8s, raw_compose = yaml.safe_load(text), yaml.safe_load(path.read_text())
        assert set(raw_k8s) == set(raw_compose) and set(raw_k8s["admin"]) == set(raw_compose["admin"]), name
        assert set(raw_k8s.get("toxiproxy_api", {})) == set(raw_compose.get("toxiproxy_api", {})), name
        assert k8s.fault_ttl == in_compose.fault_ttl and k8s.admin.token == "t", name  # the token from the Secret

        assert [(r.name, r.kind, r.address.port) for r in k8s.routes] == \
            [(r.name, r.kind, r.address.port) for r in in_compose.routes], name
        for theirs, route in zip(in_compose.routes, k8s.routes):
            scheme = "" if "://" in theirs.upstream else "tcp://"
            assert scheme + route.upstream == _rewritten(scheme + theirs.upstream), (name, route.name)
            upstream = urlsplit(scheme + route.upstream)
            if upstream.hostname != "127.0.0.1":  # another pod's: a Service of that name and port
                assert upstream.hostname in services, (name, route.name)
                svc = _find("Service", upstream.hostname or "")
                assert upstream.port in {p["port"] for p in svc["spec"]["ports"]}, (name, route.name)


def test_the_gpu_pods_are_named_as_the_model_api_calls_them() -> None:
    sts = _find("StatefulSet", "gpu-worker")
    headless = _find("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"  # so each pod has a DNS record of its own
    assert headless["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    pods = [f"gpu-worker-{i}.{headless['metadata']['name']}" for i in range(sts["spec"]["replicas"])]
    assert sorted(v for k, v in HOSTS.items() if k.startswith("brownout-gpu-")) == pods

    api = _containers()[("model-api", "model-api")]["command"]
    sidecar = _containers()[("gpu-worker", "brownout")]
    urls = [urlsplit(u) for u in _flag(api, "--worker").split(",")]
    assert [u.hostname for u in urls] == pods  # one URL per replica: the model API fails over itself
    _, config = _sidecar_config("gpu-worker", sidecar, _k8s_env(sidecar))
    [route] = config.routes
    port_names = {p["containerPort"]: p["name"] for p in sidecar["ports"]}
    for url in urls:  # the sidecar's route, on the pod network, listed by the headless Service
        assert url.port == route.address.port and not route.address.is_loopback
        assert {"port": url.port, "targetPort": port_names[url.port]}.items() <= \
            next(p for p in headless["spec"]["ports"] if p["port"] == url.port).items()


def _sidecar_routes_behind(service: dict[str, Any]) -> set[str]:
    """The route names of the sidecars a headless Service selects (none selected: empty)."""
    routes: set[str] = set()
    for name, doc in _workloads().items():
        if service["spec"]["selector"].items() <= doc["spec"]["template"]["metadata"]["labels"].items():
            [sidecar] = [c for c in _pod(name)["containers"] if c["name"] == "brownout"]
            routes |= {r.name for r in _sidecar_config(name, sidecar, _k8s_env(sidecar))[1].routes}
    return routes


def test_the_headless_services_find_each_fleet_and_the_job_discovers_them(tmp_path: Path) -> None:
    headless = {d["metadata"]["name"]: d for d in _docs()
                if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"}
    assert set(headless) == {"brownout-sidecars", "gpu-sidecars"}
    assert _sidecar_routes_behind(headless["brownout-sidecars"]) == {"model-api", "feature-store", "cache"}
    assert _sidecar_routes_behind(headless["gpu-sidecars"]) == {"gpu-worker"}  # the two fleets do not mix
    for svc in headless.values():
        assert {"name": "admin", "port": 8475, "targetPort": "admin"} in svc["spec"]["ports"]

    job = _find("Job", "brownout-experiment")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["brownout", "run", "/experiments/fleet-feature-store.yaml"]
    assert container["image"] == _compose()["brownout"]["image"]
    files = _find("ConfigMap", "brownout-experiments")["data"]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    api = _find("Service", "model-api")
    discovered = {}
    for name in ("fleet-feature-store.yaml", "fleet-gpu-replica-down.yaml"):
        experiment = load_experiment(tmp_path / name, env={"BROWNOUT_TOKEN": "t"})
        [group] = experiment.proxies
        assert group.token == "t"
        url = urlsplit(group.discover or "")
        discovered[name] = url.hostname
        assert url.port == 8475
        [step] = experiment.method  # one replica of the fleet, within safety's cap
        assert step.targets.mode == "one" and experiment.safety.max_targets_percent < 100
        assert step.route in _sidecar_routes_behind(headless[url.hostname or ""]), name
        assert urlsplit(experiment.target.url).hostname == "model-api"
        assert api["spec"]["ports"][0]["port"] == urlsplit(experiment.target.url).port
    assert discovered == {"fleet-feature-store.yaml": "brownout-sidecars",
                          "fleet-gpu-replica-down.yaml": "gpu-sidecars"}
