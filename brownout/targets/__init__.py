"""Target adapters for control-plane actions (backend kill): a local process, a Docker container."""

from __future__ import annotations

from pathlib import Path

from brownout.experiment.model import ActionTarget
from brownout.targets.base import Target
from brownout.targets.docker import DockerEngine, DockerTargetAdapter
from brownout.targets.process import ProcessTargetAdapter


def build_target(target: ActionTarget, *, cwd: Path | None = None) -> Target:
    """The adapter for an action step's ``target`` (exactly one of process/docker is set)."""
    if target.docker is not None:
        return DockerTargetAdapter(target.docker)
    if target.process is not None:
        return ProcessTargetAdapter(target.process, cwd=cwd)
    raise ValueError("an action target has neither process nor docker")  # the model forbids it


__all__ = ["DockerEngine", "DockerTargetAdapter", "ProcessTargetAdapter", "Target", "build_target"]
