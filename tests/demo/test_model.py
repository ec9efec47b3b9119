from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from brownout.demo.__main__ import main as demo_main
from brownout.demo.model import DemoBundle, build, cache_key, load_or_train
from brownout.demo.schema import parse_transaction
from brownout.demo.simulate import SimConfig

REPO = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_golden_scores_are_deterministic_across_trainings(bundle: DemoBundle, tmp_path: Path) -> None:
    again = build(SimConfig(), tmp_path / "again")
    assert again.golden_path.read_bytes() == bundle.golden_path.read_bytes()
    assert again.corpus_path.read_bytes() == bundle.corpus_path.read_bytes()
    assert again.model.version == bundle.model.version
    x = np.array([again.model.defaults, bundle.model.defaults])
    assert np.array_equal(again.model.score(x), bundle.model.score(x))


def test_a_second_start_loads_the_cache(bundle: DemoBundle, demo_cache: Path) -> None:
    started = time.perf_counter()
    loaded = load_or_train(demo_cache)
    assert time.perf_counter() - started < 1.0
    assert loaded.directory == bundle.directory == demo_cache / cache_key(SimConfig())
    assert loaded.model.version == bundle.model.version
    assert cache_key(SimConfig(seed=8)) != cache_key(SimConfig())


def test_corpus_and_golden_follow_the_data_file_formats(bundle: DemoBundle) -> None:
    corpus, golden = _lines(bundle.corpus_path), _lines(bundle.golden_path)
    assert len(corpus) == 800 and len(golden) == 200
    for line in corpus:
        assert line["method"] == "POST" and line["path"] == "/predict"
        parse_transaction(line["body"])
    labels = [g["label"] for g in golden]
    assert set(labels) == {0, 1}
    for g in golden:
        parse_transaction(g["body"])
        assert 0.0 <= g["expected"] <= 1.0
    # The model separates the classes on traffic it never saw.
    fraud = [g["expected"] for g in golden if g["label"] == 1]
    legit = [g["expected"] for g in golden if g["label"] == 0]
    assert np.mean(fraud) > 10 * np.mean(legit)


def test_generate_writes_the_files_the_repository_ships(demo_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert demo_main(["generate", "--cache-dir", str(demo_cache), "--out", str(out)]) == 0
    shipped = REPO / "experiments" / "data"
    for name in ("transactions.jsonl", "golden.jsonl"):
        assert (out / name).read_bytes() == (shipped / name).read_bytes(), (
            f"experiments/data/{name} is stale: python -m brownout.demo generate --out experiments/data"
        )
    assert sum((shipped / n).stat().st_size for n in ("transactions.jsonl", "golden.jsonl")) < 300_000
