"""An experiment drives an external Toxiproxy server (``proxies: [{toxiproxy: URL}]``).

The server here is a Brownout sidecar's Toxiproxy-compatible API, driven exactly as a real
Toxiproxy would be (through toxiproxy-python); the run adds its toxic on time and removes it
at the end, since Toxiproxy has no leases.
"""

from __future__ import annotations

from typing import Any

import requests

from tests.runner.conftest import Stage, brownout_run


async def test_run_adds_and_removes_toxics_on_an_external_toxiproxy(stage: Stage, proxy_factory: Any) -> None:
    toxiproxy = proxy_factory({"toxiproxy_api": {},
                               "routes": [{"name": "store", "kind": "tcp", "upstream": stage.model_url.removeprefix("http://")}]})
    path = stage.experiment(
        proxies=[{"admin": stage.proxy.admin}, {"toxiproxy": toxiproxy.toxiproxy}],
        method=[{"fault": "latency", "route": "store", "proxy": 1, "at": "1s", "duration": "2s",
                 "params": {"latency": 50, "stream": "downstream"}}],
    )
    code, out, err = await brownout_run(str(path))
    assert code == 0, out + err
    [injection] = stage.journal()["injections"]
    assert injection["proxy"] == toxiproxy.toxiproxy and injection["removed"] is True
    assert injection["started_at"] is not None and injection["ended_at"] - injection["started_at"] > 1.5
    assert requests.get(toxiproxy.toxiproxy + "/proxies/store/toxics", timeout=5).json() == []


async def test_a_non_toxic_fault_on_toxiproxy_is_invalid(stage: Stage, proxy_factory: Any) -> None:
    path = stage.experiment(
        proxies=[{"toxiproxy": "http://127.0.0.1:8474"}],
        method=[{"fault": "error", "route": "store", "params": {"status": 500}}],
    )
    code, out, err = await brownout_run(str(path))
    assert code == 3 and "method[0].fault: 'error' is not a toxic" in err
