"""The experiment library: the game days that ship with Brownout, found wherever it is installed.

The YAML files and their ``data/`` live in ``experiments/`` at the top of the source tree,
which is installed as the ``brownout_library`` package (see pyproject.toml): importlib.resources
finds it in a wheel, an editable install or the image alike. ``library:NAME`` names one of them
on the command line (``brownout run library:feature-store-latency``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from faults.errors import InvalidInput, NotFound

PACKAGE = "brownout_library"
ENV = "BROWNOUT_EXPERIMENTS"   # another folder to use as the library (e.g. a team's own game days)
PREFIX = "library:"


def packaged_dir() -> Path:
    """The library folder installed with Brownout; NotFound (exit 4) when the installation lacks it."""
    try:
        root = resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise NotFound(f"the experiment library (package {PACKAGE}) is not installed; "
                             "reinstall brownout") from None
    if not isinstance(root, Path):  # e.g. a zip import: experiments read data files next to them
        raise NotFound(f"the experiment library must be installed as files on disk, found {root!r}")
    return root


def default_dir() -> Path:
    """``$BROWNOUT_EXPERIMENTS`` when set, else the installed library."""
    folder = os.environ.get(ENV)
    return Path(folder) if folder else packaged_dir()


def experiments(folder: Path | None = None) -> dict[str, Path]:
    """Name → file of every experiment in the library; an empty library is an error, never an empty list."""
    chosen = folder if folder is not None else default_dir()
    found = {p.stem: p for p in sorted(chosen.glob("*.yaml"))} if chosen.is_dir() else {}
    if found:
        return found
    what = "no such folder" if not chosen.is_dir() else "no *.yaml in it"
    if folder is None and ENV not in os.environ:
        raise NotFound(f"the installed experiment library {chosen} is empty ({what}); reinstall brownout")
    field = "--library" if folder is not None else ENV
    raise InvalidInput(f"experiment library {chosen}: {what}", field)


def resolve_reference(path: Path | str) -> Path:
    """``library:NAME`` → that library file; any other path is returned as it is."""
    text = str(path)
    if not text.startswith(PREFIX):
        return Path(path)
    known = experiments()
    name = text[len(PREFIX):]
    if name not in known:
        raise InvalidInput(f"no experiment {name!r} in the library; known: {', '.join(known)}", source=text)
    return known[name]
