"""The project explains itself: no file cites a document outside the repository, and the
modules the docstrings name exist."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Dotted names in docstrings that are not Python: the proxy's span and event names (OpenTelemetry).
NOT_MODULES = {"brownout.fault.injected", "brownout.connection"}
# Built from pieces so that this line does not cite what it looks for.
OUTSIDE = re.compile("DESIGN" + r"(\.md| §)|shared/" + "reference|ml-protocols" + r"(\.md| §)|toxiproxy-api\.md"
                     + r"|\breference (§|F\d)|reference'?s checklist")


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / line for line in out.splitlines() if line]


def test_nothing_cites_a_document_outside_the_repository() -> None:
    cited = [f"{p.relative_to(REPO)}:{n}: {line.strip()}"
             for p in _tracked("*.py", "*.md", "*.yaml", "*.yml", "*.sh", "Makefile", "Dockerfile")
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if OUTSIDE.search(line)]
    assert not cited, "\n".join(cited)


def test_the_architecture_document_exists_and_the_readme_points_at_it() -> None:
    doc = REPO / "docs" / "architecture.md"
    assert doc.exists()
    assert "docs/architecture.md" in (REPO / "README.md").read_text()


def _resolves(dotted: str) -> bool:
    """A module, or an attribute of one (the longest prefix that imports, then attributes)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(target, attr):
                return False
            target = getattr(target, attr)
        return True
    return False


def test_modules_named_in_docstrings_exist() -> None:
    """``proxy.http_errors`` and the like, in double backquotes, name real modules or attributes."""
    missing = []
    for path in _tracked("brownout/*.py", "proxy/*.py", "faults/*.py"):
        for name in re.findall(r"``((?:brownout|proxy|faults)(?:\.[a-z_0-9]+)+)``", path.read_text()):
            if name not in NOT_MODULES and not _resolves(name):
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert not missing, "\n".join(missing)
