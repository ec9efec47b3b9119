"""Train the fraud model on simulated data, and cache it (with the online snapshot).

The cache is keyed by a hash of everything that changes the result (simulator config,
format version, scikit-learn version), so a second start loads in milliseconds and a
changed config never reuses a stale model. Files are written atomically (temp + rename),
so several services starting at once against an empty cache all end up with one good copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier

from .corpus import write_corpus
from .features import REQUEST_FEATURES, OnlineSnapshot, offline_features, online_snapshot
from .simulate import DAY_S, SimConfig, Transactions, simulate

FORMAT_VERSION = 1          # bump when the simulator, features or model change
BURN_IN_DAYS = 7            # windows need history before a row is a fair training example
SERVE_FROM_DAY = 53         # train on days [burn-in, 53); the snapshot and live traffic start here
THRESHOLD = 0.5
CACHE_ENV = "BROWNOUT_DEMO_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "brownout" / "demo"


@dataclass(frozen=True, eq=False)
class DemoModel:
    version: str
    estimator: HistGradientBoostingClassifier
    defaults: tuple[float, ...]     # training means: the fallback when features are missing
    threshold: float = THRESHOLD

    @property
    def store_defaults(self) -> list[float]:
        """Defaults for the feature-store features only (request features are always known)."""
        return list(self.defaults[len(REQUEST_FEATURES):])

    def score(self, instances: np.ndarray) -> np.ndarray:
        """Fraud probability per row. Rows are independent: batching never changes a score."""
        return self.estimator.predict_proba(instances)[:, 1]


@dataclass(frozen=True, eq=False)
class DemoBundle:
    """Everything the services need, loaded from (or written to) ``directory``."""

    model: DemoModel
    snapshot: OnlineSnapshot
    config: SimConfig
    directory: Path

    @property
    def corpus_path(self) -> Path:
        return self.directory / "transactions.jsonl"

    @property
    def golden_path(self) -> Path:
        return self.directory / "golden.jsonl"


def cache_key(config: SimConfig) -> str:
    material = json.dumps(
        {"format": FORMAT_VERSION, "sim": asdict(config), "sklearn": sklearn.__version__}, sort_keys=True
    )
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def train(tx: Transactions, key: str) -> DemoModel:
    rows = np.flatnonzero((tx.time_s >= BURN_IN_DAYS * DAY_S) & (tx.time_s < SERVE_FROM_DAY * DAY_S))
    x = offline_features(tx, rows)
    y = tx.fraud[rows]
    estimator = HistGradientBoostingClassifier(
        max_iter=80, learning_rate=0.1, max_leaf_nodes=15, early_stopping=False, random_state=tx.config.seed
    )
    estimator.fit(x, y)
    defaults = tuple(float(v) for v in x.mean(axis=0))
    return DemoModel(version=f"fraud-hgb-{key[:8]}", estimator=estimator, defaults=defaults)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; services may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(config: SimConfig, directory: Path) -> DemoBundle:
    """Simulate, train, snapshot and write the payload corpus and golden set (no cache read)."""
    tx = simulate(config)
    key = cache_key(config)
    model = train(tx, key)
    snapshot = online_snapshot(tx, SERVE_FROM_DAY * DAY_S)
    bundle = DemoBundle(model=model, snapshot=snapshot, config=config, directory=directory)
    corpus, golden = write_corpus(model.score, snapshot, tx, seed=config.seed, serve_from_day=SERVE_FROM_DAY)
    _atomic_write(bundle.corpus_path, corpus)
    _atomic_write(bundle.golden_path, golden)
    state = {"model": model, "snapshot": snapshot, "config": config}
    _atomic_write(directory / "bundle.pkl", pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    return bundle


def load_or_train(cache_dir: Path | str | None = None, config: SimConfig = SimConfig()) -> DemoBundle:
    """The cached bundle for ``config``, training it first when the cache has none."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    directory = root / cache_key(config)
    path = directory / "bundle.pkl"
    if path.exists() and (directory / "golden.jsonl").exists():
        # The cache is our own output in a directory we own, so unpickling it is safe.
        state = pickle.loads(path.read_bytes())
        return DemoBundle(model=state["model"], snapshot=state["snapshot"], config=state["config"], directory=directory)
    return build(config, directory)
