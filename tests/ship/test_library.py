"""``brownout.library`` in the development install: the library is the checkout's experiments/."""

from __future__ import annotations

from pathlib import Path

import pytest

from brownout import library
from brownout.experiment import load_experiment
from faults.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]


def test_the_editable_install_maps_the_library_package_onto_experiments() -> None:
    assert library.packaged_dir() == REPO / "experiments"
    assert set(library.experiments()) == {p.stem for p in (REPO / "experiments").glob("*.yaml")}


def test_library_references_resolve_and_other_paths_pass_through(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.delenv(library.ENV, raising=False)
    assert library.resolve_reference("library:steady-load") == REPO / "experiments" / "steady-load.yaml"
    assert library.resolve_reference(Path("mine.yaml")) == Path("mine.yaml")
    with pytest.raises(InvalidInput) as err:
        library.resolve_reference("library:nope")
    assert err.value.source == "library:nope" and "known: cache-down, " in err.value.message

    (tmp_path / "ours.yaml").write_text((REPO / "experiments" / "steady-load.yaml").read_text())
    monkeypatch.setenv(library.ENV, str(tmp_path))  # a team's own library replaces the shipped one
    assert library.resolve_reference("library:ours") == tmp_path / "ours.yaml"


def test_a_library_experiment_loads_with_its_data_from_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(library.ENV, raising=False)
    experiment = load_experiment("library:feature-store-latency", time_scale=0.5)
    assert experiment.title == "Feature store slows down under load"
    assert experiment.load.payloads == REPO / "experiments" / "data" / "transactions.jsonl"
