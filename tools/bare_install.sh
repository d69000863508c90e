#!/usr/bin/env bash
# Install the pack's requirements.txt as a user without a C compiler would (Windows without Visual
# Studio's build tools, a slim container), and prove the face stack works there.
#
#   tools/bare_install.sh [PYTHON]   (default python3)
#
# 1. a fresh venv of PYTHON in a temporary folder (BARE_VENV keeps it at that path instead);
# 2. no compiler reachable: gcc, cc, g++, c++, clang and the like on PATH fail, CC=/bin/false,
#    CXX=/bin/false, so any package that would compile fails to install; and no wheel this machine
#    once built from source (pip's cache keeps them: an insightface 0.7.3 built here would install
#    silently), only pip's cache of downloads;
# 3. `pip install -r requirements.txt`, exactly as the README says;
# 4. exactly one onnxruntime distribution installed;
# 5. unless BARE_REQUIREMENTS_ONLY=1: what ComfyUI itself brings and the face tests need (torch
#    (BARE_TORCH; the CPU build is enough), pillow, pytest, onnx) and the tests marked `standalone`
#    (they need no ComfyUI host: tests/test_face_runtime.py). Fixtures come from IDEA_CACHE as usual.
set -euo pipefail

PACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${1:-python3}
BARE_TORCH=${BARE_TORCH:-torch==2.13.0+cpu}  # the CPU wheel that lies on this machine's disk
log() { echo "[bare-install] $*" >&2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv=${BARE_VENV:-$work/venv}

# ---- no compiler: stand-ins that fail, ahead of the real ones on PATH ---------------------------------
mkdir -p "$work/no-compiler"
for tool in cc gcc g++ c++ clang clang++ cpp ld x86_64-linux-gnu-gcc x86_64-linux-gnu-g++ \
            aarch64-linux-gnu-gcc aarch64-linux-gnu-g++; do
  printf '#!/bin/sh\necho "%s: no C compiler in this environment (tools/bare_install.sh)" >&2\nexit 1\n' "$tool" \
    > "$work/no-compiler/$tool"
  chmod +x "$work/no-compiler/$tool"
done
export PATH="$work/no-compiler:$PATH" CC=/bin/false CXX=/bin/false
downloads=$("$PYTHON" -m pip cache dir 2>/dev/null || true)
mkdir -p "$work/pip-cache"
for part in http http-v2; do
  if [ -n "$downloads" ] && [ -d "$downloads/$part" ]; then ln -s "$downloads/$part" "$work/pip-cache/$part"; fi
done
export PIP_CACHE_DIR=$work/pip-cache  # downloads shared, locally built wheels not
if gcc --version >/dev/null 2>&1 || cc --version >/dev/null 2>&1 || g++ --version >/dev/null 2>&1; then
  log "a compiler is still reachable"; exit 1
fi

# ---- the user's install ----------------------------------------------------------------------------
rm -rf "$venv"
"$PYTHON" -m venv "$venv"
py=$venv/bin/python
log "$("$py" --version) in $venv, no compiler on PATH: pip install -r requirements.txt"
"$py" -m pip install --quiet -r "$PACK_DIR/requirements.txt"

runtimes=$("$py" "$PACK_DIR/tools/installed_pins.py" onnxruntimes)  # onnxruntime, onnxruntime-gpu, -directml...
log "onnxruntime distributions installed: ${runtimes:-none}"
if [ "$(wc -w <<<"$runtimes")" != 1 ]; then
  log "expected exactly one onnxruntime distribution"; exit 1
fi
if [ "${BARE_REQUIREMENTS_ONLY:-0}" = 1 ]; then
  log "requirements installed from wheels only: $("$py" -m pip list --format=freeze | tr '\n' ' ')"
  exit 0
fi

# ---- the face tests that need no ComfyUI host -------------------------------------------------------
log "adding what ComfyUI brings and the face tests need: $BARE_TORCH pillow pytest onnx"
"$py" -m pip install --quiet "$BARE_TORCH" pillow pytest onnx
cd "$PACK_DIR"
mapfile -t files < <(grep -l "pytest.mark.standalone" tests/test_*.py)
log "running the standalone tests of ${files[*]}"
"$py" -m pytest "${files[@]}" -m standalone -q -p no:cacheprovider
