#!/usr/bin/env bash
# Start the provisioned ComfyUI with this pack. Adds --cpu when torch sees no GPU, since the host's
# CUDA torch build asserts on a machine without one.
set -euo pipefail
: "${IDEA_COMFYUI:?source .host/env.sh first (make run does)}"
extra=()
if ! "$IDEA_PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  extra+=(--cpu)
fi
cd "$IDEA_COMFYUI"
exec "$IDEA_PY" main.py "${extra[@]}" "$@"
