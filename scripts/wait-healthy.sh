#!/bin/sh
# Wait until every given container's healthcheck passes (docker-compose 1.29 has no `up --wait`):
#
#   scripts/wait-healthy.sh $(docker compose ps -q)        # or $(docker-compose ps -q)
#
# Exits 0 when all are healthy, 1 as soon as one is unhealthy or stopped (its last health
# output is printed), 1 after WAIT_TIMEOUT seconds (default 180).
set -eu
[ $# -gt 0 ] || { echo "wait-healthy: no containers given (is the stack up?)" >&2; exit 1; }
deadline=$(( $(date +%s) + ${WAIT_TIMEOUT:-180} ))
while :; do
  waiting=""
  for id in "$@"; do
    state=$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
    case "$state" in
      *" running healthy") ;;
      *" running starting") waiting="$waiting ${state%% *}" ;;
      *)
        echo "wait-healthy: ${state} (a service without a healthcheck is 'none')" >&2
        docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' "$id" | tail -5 >&2
        exit 1 ;;
    esac
  done
  [ -n "$waiting" ] || { echo "wait-healthy: all $# healthy"; exit 0; }
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "wait-healthy: still starting after ${WAIT_TIMEOUT:-180}s:$waiting" >&2
    exit 1
  fi
  sleep 2
done
