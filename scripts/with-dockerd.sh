#!/usr/bin/env bash
# Run a command with a Docker daemon: the one already running, else one started here (root)
# and stopped when the command ends, so that nothing is left running.
#
#   scripts/with-dockerd.sh python3 scripts/ship_check.py
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exec "$@"
fi
[ "$(id -u)" = 0 ] || { echo "with-dockerd: no Docker daemon answers, and starting one needs root" >&2; exit 1; }
log=/tmp/brownout-dockerd.log
dockerd >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 150); do
  docker info >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; echo "with-dockerd: dockerd exited" >&2; exit 1; }
  sleep 0.2
done
docker info >/dev/null 2>&1 || { tail -20 "$log" >&2; echo "with-dockerd: dockerd did not answer in 30s" >&2; exit 1; }
echo "with-dockerd: started dockerd (pid $pid, log $log); it stops when the command ends"
"$@"
