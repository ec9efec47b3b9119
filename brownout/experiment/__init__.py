"""Experiment files: the typed model, the loader (positions, overrides, all errors at once), the schema."""

from brownout.experiment.loader import apply_override, load_experiment
from brownout.experiment.model import ActionStep, Experiment, FaultStep
from brownout.experiment.schema import experiment_json_schema

__all__ = ["ActionStep", "Experiment", "FaultStep", "apply_override", "experiment_json_schema", "load_experiment"]
