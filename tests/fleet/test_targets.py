"""Blast radius and groups, without a network: target selection (seeded), counts and limits,
the experiment file's checks, and sidecars sorted by address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from brownout.experiment import load_experiment
from brownout.experiment.proxies import Safety, Targets
from brownout.fleet.discovery import Sidecar, admin_url, resolve_group
from brownout.fleet.prepare import lead_for
from brownout.fleet.targets import check_step, choose, target_count
from faults.errors import InvalidInput, InvalidInputs


def test_counts_per_mode_percent_rounds_down_with_at_least_one() -> None:
    assert target_count(5, Targets(), "m") == 5
    assert target_count(5, Targets(mode="one"), "m") == 1
    assert target_count(5, Targets(mode="fixed", value=2), "m") == 2
    assert target_count(5, Targets(mode="percent", value=40), "m") == 2
    assert target_count(5, Targets(mode="percent", value=59), "m") == 2  # 2.95 → 2
    assert target_count(5, Targets(mode="percent", value=1), "m") == 1  # 0.05 → at least one
    assert target_count(3, Targets(mode="percent", value=100), "m") == 3
    with pytest.raises(InvalidInput) as caught:
        target_count(2, Targets(mode="fixed", value=3), "method[4]")
    assert caught.value.field == "method[4].targets.value"


def test_the_same_seed_and_step_pick_the_same_members_and_others_spread() -> None:
    one, two = Targets(mode="one"), Targets(mode="fixed", value=2)
    assert choose(5, two, seed=11, step=1) == choose(5, two, seed=11, step=1)
    assert choose(5, Targets(), seed=11, step=0) == (0, 1, 2, 3, 4)
    picks = {choose(5, one, seed=seed, step=0) for seed in range(50)}
    assert picks == {(0,), (1,), (2,), (3,), (4,)}  # every member gets its turn over seeds
    by_step = {choose(10, two, seed=3, step=step) for step in range(20)}
    assert len(by_step) > 5  # the step's index takes part in the seed
    chosen = choose(10, Targets(mode="percent", value=30), seed=7, step=2)
    assert len(chosen) == 3 and list(chosen) == sorted(set(chosen)) and all(0 <= i < 10 for i in chosen)


def test_safety_caps_every_step_and_min_armed_fits_the_choice() -> None:
    cap = Safety(max_targets_percent=40)
    assert check_step(5, Targets(mode="percent", value=40), cap, "method[0]") == 2
    with pytest.raises(InvalidInput) as caught:
        check_step(5, Targets(), cap, "method[1]")
    assert caught.value.field == "method[1].targets" and "5 of 5" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        check_step(5, Targets(mode="fixed", value=2, min_armed=3), Safety(), "method[0]")
    assert caught.value.field == "method[0].targets.min_armed"


def test_targets_refuse_values_that_do_not_fit_the_mode() -> None:
    for bad in ({"mode": "one", "value": 1}, {"mode": "fixed"}, {"mode": "fixed", "value": 1.5},
                {"mode": "percent", "value": 150}, {"mode": "percent", "value": 0}, {"mode": "some"},
                {"mode": "all", "min_armed": 0}):
        with pytest.raises(ValueError):
            Targets.model_validate(bad)


def _file(tmp_path: Path, proxies: list[dict[str, Any]], method: list[dict[str, Any]], **extra: Any) -> Path:
    doc = {"version": 1, "title": "t", "target": {"url": "http://127.0.0.1:1/"}, "proxies": proxies,
           "load": {"shape": "constant", "rate": 1, "duration": "1s"}, "method": method, **extra}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _errors(path: Path) -> dict[str, str]:
    with pytest.raises(InvalidInputs) as caught:
        load_experiment(path, env={})
    return {e.field or "": f"{e.line}: {e.message}" for e in caught.value.errors}


def test_the_file_names_groups_and_is_checked_where_the_group_size_is_known(tmp_path: Path) -> None:
    admins = ["http://127.0.0.3:8475", "http://127.0.0.2:8475", "http://127.0.0.4:8475"]
    step = {"fault": "latency", "route": "api", "params": {"delay_ms": 1}}
    path = _file(tmp_path, [{"name": "api-sidecars", "admin": admins, "token": "t"},
                            {"discover": "http://sidecars:8475"}],
                 [{**step, "proxy": "api-sidecars", "targets": {"mode": "fixed", "value": 1}},
                  {**step, "proxy": "http://127.0.0.2:8475", "targets": {"mode": "one"}},
                  {**step, "proxy": 1, "targets": {"mode": "fixed", "value": 9}}],
                 safety={"max_targets_percent": 50})
    exp = load_experiment(path, env={})
    assert exp.proxy_index(exp.method[0]) == 0 and exp.proxy_index(exp.method[1]) == 0
    assert exp.proxy_index(exp.method[2]) == 1 and exp.proxies[1].fixed_size is None  # checked at preflight
    assert exp.redacted()["proxies"][0]["token"] == "***"

    path = _file(tmp_path, [{"name": "a", "admin": admins}, {"name": "a", "admin": "http://127.0.0.9:1"}],
                 [{**step, "proxy": "b"}, {**step, "proxy": 0, "targets": {"mode": "fixed", "value": 4}},
                  {**step, "proxy": 0}], safety={"max_targets_percent": 50})
    errors = _errors(path)
    assert set(errors) == {"proxies[1].name", "method[0].proxy", "method[1].targets.value", "method[2].targets"}
    assert "3 of 3" in errors["method[2].targets"] and "not the name or a URL" in errors["method[0].proxy"]
    assert errors["method[2].targets"].split(":")[0] != "None"  # located in the file

    path = _file(tmp_path, [{"discover": "http://sidecars:8475/admin"}, {"admin": []},
                            {"admin": ["http://a:1", "http://a:1"]}, {"admin": "http://a:1", "discover": "http://b:1"}],
                 [])
    assert set(_errors(path)) == {"proxies[0].discover", "proxies[1].admin", "proxies[2].admin", "proxies[3]"}


async def test_members_are_sorted_by_address_whatever_the_order_given() -> None:
    from brownout.experiment.proxies import ProxyRef

    ref = ProxyRef(admin=("http://127.0.0.10:1", "http://127.0.0.9:1", "http://[::1]:1", "http://side:1",
                          "http://127.0.0.9:0"))
    group = await resolve_group(0, ref)
    assert group.admins == ("http://127.0.0.9:0", "http://127.0.0.9:1", "http://127.0.0.10:1", "http://[::1]:1",
                            "http://side:1")
    assert Sidecar.from_url("http://10.0.0.2:8475") < Sidecar.from_url("http://10.0.0.10:8475")
    assert admin_url("http", "fd00::2", 8475) == "http://[fd00::2]:8475"


async def test_discover_resolves_every_address_of_a_name() -> None:
    from brownout.experiment.proxies import ProxyRef

    group = await resolve_group(3, ProxyRef(discover="http://localhost:8475"))
    assert group.how == "discover" and group.index == 3
    assert set(group.admins) <= {"http://127.0.0.1:8475", "http://[::1]:8475"} and group.admins
    with pytest.raises(Exception) as caught:
        await resolve_group(0, ProxyRef(discover="http://no-such-sidecar.invalid:8475"))
    assert "does not resolve" in str(caught.value)


def test_the_lead_is_a_few_round_trips_and_bounded() -> None:
    assert lead_for(0.001, 5) == 0.1  # the floor
    assert lead_for(0.02, 10) == pytest.approx(0.26)
    assert lead_for(10.0, 3) == 5.0


def test_fleet_slis_need_a_sidecar_and_a_known_scope(tmp_path: Path) -> None:
    spec = {"window": "1s", "sidecars": {"scope": "each", "sla": {"error_rate": 0.1, "min_throughput": 5}}}
    path = _file(tmp_path, [{"discover": "http://sidecars:8475"}], [], steady_state=spec)
    slis = load_experiment(path, env={}).steady_state.sidecars
    assert slis is not None and slis.scope == "each" and slis.sla.min_throughput == 5
    path = _file(tmp_path, [{"toxiproxy": "http://127.0.0.1:8474"}], [], steady_state=spec)
    assert "needs a Brownout sidecar" in _errors(path)["steady_state.sidecars"]
    path = _file(tmp_path, [{"admin": "http://127.0.0.1:1"}], [],
                 steady_state={"sidecars": {"scope": "some", "sla": {"error_rate": 2}}})
    assert set(_errors(path)) == {"steady_state.sidecars.scope", "steady_state.sidecars.sla.error_rate"}
