# hallq: `make demo` runs a whole hall on this machine, `make test` runs the tests.
# Both set up what they need first (scripts/setup.sh: apt packages, uv, the workspace in .venv).
SHELL := /bin/bash
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: setup test lint demo bench protocol-doc clean flash-pad images image

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
	$(VENV)/hallq demo $(if $(BROKER),--broker $(BROKER),) $(if $(SECURE),--secure,) $(DEMO_ARGS)

# Raspberry Pi images (images/README.md): all four roles, or one (make image ROLE=kiosk); output in images/out/.
# The arm64 base is built once under emulation (≈12 min) and cached in /var/cache/hallq/images.
images: setup
	$(VENV)/python images/build.py all

image: setup
	@test -n "$(ROLE)" || { echo "make image ROLE=controller|kiosk|display|pad" >&2; exit 2; }
	$(VENV)/python images/build.py image $(ROLE)

# Install the rating pad firmware on a Pico W running MicroPython (1.23 or later): make flash-pad PORT=/dev/ttyACM0
PORT ?= /dev/ttyACM0
flash-pad: setup
	rating-pad/firmware/flash.sh $(PORT)

clean:
	rm -rf .venv .uv .pytest_cache demo-out
