# The two commands a fresh machine needs: `make run` and `make test`. Both provision the host
# (ComfyUI 0.3.75, a venv, this pack linked in) on first use; later runs take seconds.
SHELL := /bin/bash
PORT ?= 8188
PYTEST_ARGS ?=

.PHONY: run test provision bench-tiny

provision:
	@tools/provision.sh

run: provision
	@source .host/env.sh && tools/run_host.sh --listen 127.0.0.1 --port $(PORT)

test: provision
	@source .host/env.sh && "$$IDEA_PY" -m pytest tests $(PYTEST_ARGS)

bench-tiny: provision
	@source .host/env.sh && "$$IDEA_PY" bench/run_all.py --tiny
