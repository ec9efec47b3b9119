"""``steady_state.probes`` and ``steady_state.cost`` in experiment files: ${VAR}, errors with
their place, credentials kept out of reports; and the scrape interval a probe waits for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from brownout.demo.web import free_port, serve
from brownout.experiment.loader import load_experiment
from brownout.observe.promql import PrometheusClient, parse_prometheus_duration
from faults.errors import InvalidInputs
from tests.observe.prometheus_fixture import PrometheusFactory
from tests.observe.test_promql_probes import _auth_gateway


def write(tmp_path: Path, steady: dict[str, Any]) -> Path:
    doc = {"version": 1, "title": "t", "target": {"url": "http://127.0.0.1:9/predict"},
           "load": {"rate": 1, "duration": "10s"}, "steady_state": steady}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_probes_expand_variables_and_keep_credentials_out_of_reports(tmp_path: Path) -> None:
    path = write(tmp_path, {"probes": [{"name": "rate", "prometheus": "${PROM:-http://127.0.0.1:9090}",
                                        "query": 'sum(rate(x{job="${JOB}"}[5s]))', "bound": {"<=": 1},
                                        "auth": {"bearer_token": "${TOKEN}"}, "delay": "2s"}],
                            "cost": {"pidfiles": ["run/api.pid"]}})
    exp = load_experiment(path, env={"JOB": "model-api", "TOKEN": "s3cret"}, time_scale=0.5)
    [probe] = exp.steady_state.probes
    assert probe.prometheus == "http://127.0.0.1:9090" and probe.query == 'sum(rate(x{job="model-api"}[5s]))'
    assert probe.delay == 2.0  # Prometheus' time: not scaled by --time-scale
    assert exp.steady_state.cost is not None and exp.steady_state.cost.pidfiles == (tmp_path / "run" / "api.pid",)
    redacted = exp.redacted()["steady_state"]
    assert redacted["probes"][0]["auth"] == "***" and "s3cret" not in str(redacted)


def test_probe_and_cost_errors_name_their_place(tmp_path: Path) -> None:
    probe = {"name": "p", "prometheus": "http://h:9090", "query": "up", "bound": {"<=": 1}}
    path = write(tmp_path, {"probes": [probe, probe | {"bound": {"=<": 1}}],
                            "cost": {"pidfiles": ["a.pid"], "prometheus": "http://h:9090"}})
    with pytest.raises(InvalidInputs) as info:
        load_experiment(path)
    messages = {e.field: e.message for e in info.value.errors}
    assert "unknown operator '=<'" in messages["steady_state.probes[1].bound"]
    assert "not both" in messages["steady_state.cost"]
    path = write(tmp_path, {"probes": [probe, probe]})
    with pytest.raises(InvalidInputs, match="probe names must be unique"):
        load_experiment(path)


def test_prometheus_durations() -> None:
    assert parse_prometheus_duration("15s") == 15 and parse_prometheus_duration("1m30s") == 90
    assert parse_prometheus_duration("250ms") == 0.25 and parse_prometheus_duration("fast") is None


async def test_the_scrape_interval_comes_from_prometheus_itself(prometheus_factory: PrometheusFactory) -> None:
    prom = await prometheus_factory({"none": f"http://127.0.0.1:{free_port()}/metrics"}, wait_up=False,
                                    interval_s=2.0)
    async with PrometheusClient(prom.url) as client:
        assert await client.scrape_interval() == 2.0
    # Behind a gateway that only forwards queries, it cannot say: the probe then assumes 15 s.
    async with serve(_auth_gateway(prom.url, "Bearer t")) as gateway:
        async with PrometheusClient(gateway.url, bearer_token="t") as client:
            assert await client.scrape_interval() is None
