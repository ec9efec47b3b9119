#!/usr/bin/env bash
# Build, on the host, the wheels the image installs without network (deploy/wheelhouse/: every
# dependency of brownout[demo], sdists built to wheels here, and setuptools to build Brownout)
# and Brownout's own wheel (dist/).
#
#   scripts/wheelhouse.sh [BASE_IMAGE]
#
# The wheels must be chosen by the image's own Python version, to the patch level
# (dependencies carry markers such as python_full_version < "3.11.3"): given the base image,
# the script asks it for its version and uses a host Python of that exact version ($PYTHON,
# .venv's, or the system's python3), through a venv of its own in .cache/.
set -euo pipefail
cd "$(dirname "$0")/.."

HOUSE=deploy/wheelhouse
version='import sys; print("%d.%d.%d" % sys.version_info[:3])'

pick_python() {  # pick_python VERSION: a host Python of exactly VERSION, with pip
  local candidate venv=.cache/wheelhouse-python-$1
  if [ -x "$venv/bin/python" ]; then echo "$venv/bin/python"; return; fi
  for candidate in ${PYTHON:-} .venv/bin/python /usr/bin/python3 python3 python3.11; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    [ "$("$candidate" -c "$version")" = "$1" ] || continue
    "$candidate" -m venv "$venv" >&2
    echo "$venv/bin/python"
    return
  done
  echo "wheelhouse: no Python $1 on this host (the image's); set PYTHON to one" >&2
  return 1
}

if [ -n "${1:-}" ]; then
  PYTHON=$(pick_python "$(docker run --rm "$1" python3 -c "$version")")
else
  PYTHON=${PYTHON:-.venv/bin/python}
fi

# brownout[demo]'s requirements, read from pyproject.toml (Brownout itself is built in the image).
mapfile -t requirements < <("$PYTHON" - <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["demo"]))
EOF
)
requires_build=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"][0])')

# pip's output only when it fails
pip_wheel() {
  local log
  log=$(mktemp)
  if ! "$PYTHON" -m pip wheel -q "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

rm -f "$HOUSE"/*.whl
pip_wheel --wheel-dir "$HOUSE" "${requirements[@]}" "$requires_build"

# Brownout's wheel, from a clean build folder (setuptools would reuse stale files from build/).
rm -rf build dist ./*.egg-info
pip_wheel --no-deps --wheel-dir dist .
rm -rf build ./*.egg-info
echo "wheelhouse: Python $("$PYTHON" -c "$version"), $(ls "$HOUSE"/*.whl | wc -l) wheels, $(du -sh "$HOUSE" | cut -f1) in $HOUSE; $(ls dist/*.whl)"
