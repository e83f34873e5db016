# hallq: `make demo` runs a whole hall on this machine, `make test` runs the tests.
# Both set up what they need first (scripts/setup.sh: apt packages, uv, the workspace in .venv).
SHELL := /bin/bash
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: setup test lint demo bench protocol-doc clean

setup:
	@scripts/setup.sh

lint: setup
	$(VENV)/ruff check .

test: setup
	$(VENV)/ruff check .
	$(VENV)/python -m pytest $(PYTEST_ARGS)

protocol-doc: setup
	$(VENV)/hallq protocol-doc --out docs/protocol.md

bench: setup
	$(VENV)/python -m bench

demo: setup
	$(VENV)/hallq demo $(if $(BROKER),--broker $(BROKER),) $(DEMO_ARGS)

clean:
	rm -rf .venv .uv .pytest_cache demo-out
