"""The JSON Schema of experiment files, read from the model (``brownout schema``).

Editors use it through yaml-language-server: put
``# yaml-language-server: $schema=./experiment.schema.json`` at the top of a file.
"""

from __future__ import annotations

from typing import Any

from brownout.experiment.model import Experiment

SCHEMA_ID = "https://brownout.dev/schemas/experiment-v1.json"


def experiment_json_schema() -> dict[str, Any]:
    schema = Experiment.model_json_schema(mode="validation", by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Brownout experiment",
        "description": "A chaos experiment: target, load, steady state (SLA), method (faults and actions), "
                       "safeguards, recovery and report. Durations: 250ms, 30s, 5m, 1h or seconds.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }
