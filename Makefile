# The two commands a fresh machine needs: `make run` and `make test`. Both provision the host
# (ComfyUI 0.3.75, a venv, this pack linked in) on first use; later runs take seconds. `make run`
# installs only what running needs; `make test` adds the tests' packages and Debian's chromium.
# tools/provision.sh prints the env.sh of the host it made ready; its header lists the variables
# that pick another host (COMFYUI_PATH, IDEA_COMFYUI_SOURCE), frontend (IDEA_FRONTEND) or folder.
SHELL := /bin/bash
PORT ?= 8188
PYTEST_ARGS ?=

.PHONY: run test provision provision-tests bench-tiny

provision:
	@tools/provision.sh >/dev/null

provision-tests:
	@tools/provision.sh --with-tests >/dev/null

run:
	@env_sh=$$(tools/provision.sh) && source "$$env_sh" && tools/run_host.sh --listen 127.0.0.1 --port $(PORT)

test:
	@env_sh=$$(tools/provision.sh --with-tests) && source "$$env_sh" && "$$IDEA_PY" -m pytest tests $(PYTEST_ARGS)

bench-tiny:
	@env_sh=$$(tools/provision.sh --with-tests) && source "$$env_sh" && "$$IDEA_PY" bench/run_all.py --tiny
