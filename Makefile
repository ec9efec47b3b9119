# The two commands of the README: `make demo` runs the main job, `make test` runs the tests.
# Both set everything up first (scripts/setup.sh is idempotent).
.PHONY: setup demo demo-run test proxy bench

BROWNOUT ?= .venv/bin/brownout
DEMO_ARGS ?=

setup:
	@scripts/setup.sh

demo: setup
	@$(MAKE) --no-print-directory demo-run

# The game day without the setup step. `brownout demo` exits 1 when the game day finds a
# weakness: that is the demo working as designed, so make succeeds for 0 and 1 and says
# which it was; it fails, with a plain message, only when the game day could not be played.
demo-run:
	@$(BROWNOUT) demo $(DEMO_ARGS); code=$$?; \
	case $$code in \
	  0) echo "game day verdict: the SLA held (exit 0) — see the report above";; \
	  1) echo "game day verdict: the SLA was violated (exit 1) — the game day found a weakness, as designed; see the report above";; \
	  2) echo "game day stopped early: a safeguard fired or the baseline failed (exit 2) — see the report above" >&2;; \
	  3) echo "game day not started: invalid input (exit 3) — see the error above" >&2;; \
	  4) echo "game day could not run: a service or the proxy could not be reached (exit 4) — see the error above" >&2;; \
	  130) echo "game day interrupted (exit 130); its faults were removed" >&2;; \
	  *) echo "brownout demo failed (exit $$code)" >&2;; \
	esac; \
	[ $$code -le 1 ] || exit $$code

# Three pytest-xdist workers that take work from each other: most tests wait on sockets and
# subprocesses (11.5 min instead of 29 on 2 CPUs; 16.5 without work stealing, one worker left with the last game days).
test: setup
	.venv/bin/pytest -q -n 3 --dist worksteal

proxy: setup
	.venv/bin/brownout proxy --config deploy/brownout.local.yaml

bench: setup
	.venv/bin/python -m benchmarks.run
