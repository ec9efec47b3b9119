"""The admin API's OpenAPI document, and schemathesis fuzzing every endpoint against it.

Two real proxies, one without a token (loopback default) and one with: every generated
request, valid or not, must get no 5xx and a response whose status, media type, body and
headers the document describes; with a token, an operation that needs it must refuse a
request without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from faults import known_kinds
from tests.conftest import ProxyProcess, start_proxy

TOKEN = "s3cret"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]


def _config(token: str | None, record_dir: Any) -> dict[str, Any]:
    return {
        "admin": {"token": token} if token else {},
        "record": {"dir": str(record_dir), "max_bytes": "10MiB", "max_file_bytes": "1MiB"},
        "fault_ttl": {"default": "1m", "max": "10m"},
        "routes": [{"name": "api", "upstream": "http://127.0.0.1:9"},
                   {"name": "cache", "kind": "tcp", "upstream": "127.0.0.1:9"}],
        "faults": [{"type": "latency", "route": "api", "id": "static", "params": {"delay_ms": 1}}],
    }


@pytest.fixture(params=["no-token", "token"])
def admin(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[ProxyProcess]:
    proxy = start_proxy(tmp_path, _config(TOKEN if request.param == "token" else None, tmp_path / "recordings"))
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_endpoint_conforms_to_the_document(admin: ProxyProcess, mode: GenerationMode) -> None:
    """Bounded (a few dozen cases per operation) and derandomized, so a failure replays exactly.

    Hypothesis drives schemathesis's strategies directly: its pytest integration for a schema
    read from a fixture does not run on pytest 9.2.
    """
    schema = schemathesis.openapi.from_url(admin.admin + "/openapi.json", timeout=10)
    checks = CHECKS + ([ignored_auth] if admin.token else [])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.path_parameters) or len(operation.body)):
            continue  # nothing to make invalid (GET /healthz)

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def call(case: Any) -> None:
            case.call_and_validate(base_url=admin.admin, headers=admin.headers(), checks=checks, timeout=10)

        try:
            call()
        except Exception as exc:
            exc.add_note(f"operation: {operation.label}")
            raise


def test_sequences_that_follow_the_links(admin: ProxyProcess) -> None:
    """Stateful: a created fault's (or recording's) id is read, patched and deleted through the document's links."""
    schema = schemathesis.openapi.from_url(admin.admin + "/openapi.json", timeout=10)
    checks = CHECKS + ([ignored_auth] if admin.token else [])
    steps: list[tuple[str, int]] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:  # every scenario starts from no fault and no recording, so a replay replays
            requests.delete(admin.admin + "/faults", headers=admin.headers(), timeout=10).raise_for_status()
            for rec in requests.get(admin.admin + "/recordings", headers=admin.headers(), timeout=10).json():
                requests.delete(f"{admin.admin}/recordings/{rec['id']}", headers=admin.headers(),
                                timeout=10).raise_for_status()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": admin.admin, "headers": admin.headers(), "timeout": 10}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            steps.append((f"{case.method} {case.path}", response.status_code))
            case.validate_response(response, checks=checks, transport_kwargs=kwargs)

    Machine.run(settings=settings(max_examples=40, stateful_step_count=6, deadline=None, derandomize=True,
                                  database=None, suppress_health_check=list(HealthCheck)))
    # the links were followed: some operation on a created fault found it
    assert {step for step in steps if step[0].endswith("/faults/{id}") and step[1] == 200}, sorted(set(steps))


def test_the_document_is_generated_from_the_request_models(tmp_path: Any) -> None:
    proxy = start_proxy(tmp_path, _config(TOKEN, tmp_path / "recordings"))
    try:
        doc = requests.get(proxy.admin + "/openapi.json", timeout=10).json()  # open, like /healthz
    finally:
        proxy.stop()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/healthz", "/metrics", "/openapi.json", "/routes", "/faults", "/faults/{id}",
                                 "/recordings", "/recordings/{id}", "/recordings/{id}/data"}
    request = doc["components"]["schemas"]["FaultRequest"]
    assert request["additionalProperties"] is False and request["required"] == ["type", "route"]
    assert set(known_kinds()) <= set(request["properties"]["type"]["enum"])
    assert "latency" in request["properties"]["type"]["enum"] and "slicer" in request["properties"]["type"]["enum"]
    post = doc["paths"]["/faults"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FaultRequest"}
    assert {"201", "400", "401", "403", "409", "413", "415"} <= set(post["responses"])
    assert doc["security"] == [{"bearer": []}] and doc["paths"]["/healthz"]["get"]["security"] == []
    recording = doc["components"]["schemas"]["RecordingRequest"]
    assert recording["required"] == ["route"] and recording["properties"]["route"]["enum"] == ["api"]  # http only
    data = doc["paths"]["/recordings/{id}/data"]["get"]["responses"]
    assert "application/x-ndjson" in data["200"]["content"] and "401" in data
    error = doc["components"]["schemas"]["ErrorBody"]
    assert {"error", "field"} <= set(error["required"])
