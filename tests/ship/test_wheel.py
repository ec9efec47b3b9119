"""The wheel is complete: built from this tree, installed in a fresh venv and run from an empty folder.

The fresh venv gets the wheel alone (``--no-deps``); the third-party dependencies are borrowed
from the test venv's site-packages through a ``.pth`` line, which does not run that venv's
editable-install finder, so every ``brownout`` import comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "brownout", "proxy", "faults", "experiments")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_of_the_tree_is_listed_and_every_declared_data_file_exists() -> None:
    setuptools = _pyproject()
    found = {str(p.parent.relative_to(REPO)).replace("/", ".")
             for top in ("brownout", "proxy", "faults") for p in (REPO / top).rglob("__init__.py")
             if "__pycache__" not in p.parts}
    listed = set(setuptools["packages"])
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"brownout_library"}
    assert setuptools["package-dir"] == {"brownout_library": "experiments"}
    for package, patterns in setuptools["package-data"].items():
        folder = REPO / setuptools["package-dir"].get(package, package.replace(".", "/"))
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"{package}: package data {pattern!r} matches no file"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so that no build/ left in the checkout can leak into it."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = REPO / name
        (shutil.copytree(path, src / name, ignore=ignore) if path.is_dir() else shutil.copy(path, src / name))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(out), str(src)], check=True, capture_output=True, timeout=180)
    [built] = out.glob("brownout-*.whl")
    return built


def test_the_wheel_carries_the_library_its_data_and_the_type_markers(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    library = {f"brownout_library/{p.name}" for p in (REPO / "experiments").glob("*.yaml")}
    assert len(library) >= 10 and library <= names
    assert {"brownout_library/data/golden.jsonl", "brownout_library/data/transactions.jsonl",
            "brownout_library/__init__.py"} <= names
    assert {"brownout/py.typed", "proxy/py.typed", "faults/py.typed"} <= names
    assert not [n for n in names if n.startswith(("tests/", "experiments/", "benchmarks/"))]


@pytest.fixture(scope="module")
def fresh(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the fresh venv's bin/, an empty working folder)."""
    root = tmp_path_factory.mktemp("fresh")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=120)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    work = root / "empty"
    work.mkdir()
    yield venv / "bin", work


def _brownout(fresh: tuple[Path, Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    bin_, work = fresh
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "BROWNOUT_EXPERIMENTS"}}
    return subprocess.run([str(bin_ / "brownout"), *args], cwd=work, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_the_installed_library_is_found_in_the_venv_not_the_checkout(fresh: tuple[Path, Path]) -> None:
    bin_, work = fresh
    out = subprocess.run([str(bin_ / "python"), "-c", "import brownout, brownout_library; "
                          "print(brownout.__file__); print(brownout_library.__file__)"],
                         cwd=work, capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(bin_.parent)) for path in out), out


def test_demo_list_and_library_references_work_from_an_empty_folder(fresh: tuple[Path, Path]) -> None:
    listing = _brownout(fresh, "demo", "--list")
    assert listing.returncode == 0, listing.stderr
    names = {line.split()[0] for line in listing.stdout.splitlines() if line and not line[0].isspace()}
    assert names == {p.stem for p in (REPO / "experiments").glob("*.yaml")}

    valid = _brownout(fresh, "validate", "library:feature-store-latency")
    assert valid.returncode == 0 and "ok: library:feature-store-latency" in valid.stdout, valid.stderr
    unknown = _brownout(fresh, "run", "library:no-such-game-day")
    assert unknown.returncode == 3
    assert "library:no-such-game-day: no experiment 'no-such-game-day'" in unknown.stderr
    assert "feature-store-latency" in unknown.stderr  # the known names are listed


def test_run_of_a_library_experiment_gets_as_far_as_the_target(fresh: tuple[Path, Path]) -> None:
    """Resolved, validated (its data files found in the venv), then exit 4 at preflight: nothing listens."""
    nowhere = "http://127.0.0.1:9"  # discard: nothing answers
    result = _brownout(fresh, "run", "library:feature-store-latency", "--quiet", "--report-dir", "out",
                       BROWNOUT_TARGET=nowhere, BROWNOUT_ADMIN=nowhere)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "127.0.0.1:9" in result.stdout + result.stderr


def test_an_empty_library_is_an_error_not_an_empty_list(fresh: tuple[Path, Path], tmp_path: Path) -> None:
    empty = _brownout(fresh, "demo", "--list", "--library", str(tmp_path))
    assert empty.returncode == 3 and f"--library: experiment library {tmp_path}: no *.yaml in it" in empty.stderr
    from_env = _brownout(fresh, "demo", BROWNOUT_EXPERIMENTS=str(tmp_path / "missing"))
    assert from_env.returncode == 3 and "BROWNOUT_EXPERIMENTS: experiment library" in from_env.stderr

    bin_, _ = fresh
    installed = Path(subprocess.run([str(bin_ / "python"), "-c", "import brownout_library; print(brownout_library.__file__)"],
                                    capture_output=True, text=True, check=True).stdout.strip()).parent
    hidden = installed.with_name("library-moved-away")
    installed.rename(hidden)  # a broken installation: the package is gone
    try:
        broken = _brownout(fresh, "demo", "--list")
    finally:
        hidden.rename(installed)
    assert broken.returncode == 4, broken.stdout + broken.stderr
    assert "experiment library (package brownout_library) is not installed" in broken.stderr

    stash = tmp_path / "stash"
    stash.mkdir()
    for path in installed.glob("*.yaml"):  # the package is there, its game days are not
        path.rename(stash / path.name)
    try:
        emptied = _brownout(fresh, "demo", "--list")
    finally:
        for path in stash.iterdir():
            path.rename(installed / path.name)
    assert emptied.returncode == 4, emptied.stdout + emptied.stderr
    assert f"the installed experiment library {installed} is empty (no *.yaml in it)" in emptied.stderr
