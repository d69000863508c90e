# The two commands a fresh machine needs: `make run` and `make test`. Both provision the host
# (ComfyUI 0.3.75, a venv, this pack linked in) on first use; later runs take seconds. `make run`
# installs only what running needs; `make test` adds the tests' packages and Debian's chromium.
# IDEA_HOST_DIR puts the host somewhere other than .host/.
SHELL := /bin/bash
PORT ?= 8188
PYTEST_ARGS ?=
HOST_DIR := $(or $(IDEA_HOST_DIR),.host)

.PHONY: run test provision provision-tests bench-tiny

provision:
	@tools/provision.sh

provision-tests:
	@tools/provision.sh --with-tests

run: provision
	@source "$(HOST_DIR)/env.sh" && tools/run_host.sh --listen 127.0.0.1 --port $(PORT)

test: provision-tests
	@source "$(HOST_DIR)/env.sh" && "$$IDEA_PY" -m pytest tests $(PYTEST_ARGS)

bench-tiny: provision-tests
	@source "$(HOST_DIR)/env.sh" && "$$IDEA_PY" bench/run_all.py --tiny
