# The two commands of the README: `make demo` runs the main job, `make test` runs the tests.
# Both set everything up first (scripts/setup.sh is idempotent).
.PHONY: setup demo test proxy bench

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/brownout demo

test: setup
	.venv/bin/pytest -q

proxy: setup
	.venv/bin/brownout proxy --config deploy/brownout.local.yaml

bench: setup
	.venv/bin/python -m benchmarks.run
