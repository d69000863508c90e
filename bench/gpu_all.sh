#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one command, sized for about 8 minutes on one H100/H200:
# full-size random-weight SD1.5, SD2.1 and SDXL; Learn ID Token through the node (gradient
# checkpointing auto and on) against the published recipe, 40 node steps and 20 recipe steps per
# model with the 320-step times PROJECTED (and labelled so in every line); sampling 30 steps with and
# without Apply ID-Adapter (SD1.5 512 px, SDXL 1024 px); FaceID Embed; the training-step profile.
#
# JSON lines go to stdout and, when OUT is set (the device tool's result folder), to
# $OUT/bench-gpu.jsonl, with the log in $OUT/bench-gpu.log. Extra arguments are passed on to
# bench/run_all.py (e.g. --models sd15 or --steps 320). A hard limit (BENCH_TIMEOUT, 570 s) keeps the
# lines already written if the machine is slower than planned.
#
# `bench/gpu_all.sh flux` (a separate device call, also about 8 minutes; docs/flux.md): full-size random
# FLUX.1-dev, with bf16 weights and with fp8 weights (T5-XXL too): Learn ID Token through the node at
# 512 px, batch 4 (checkpointing auto = on, and off), 8 steps with the 320-step times PROJECTED; the
# memory sweep (512/1024 px, batch 1/4, checkpointing on/off, 4 steps each, peak memory per run, out of
# memory reported as status "oom") that docs/flux.md's computed table is to be checked against;
# sampling 20 steps at CFG 1 with and without Apply ID-Adapter. Lines go to $OUT/bench-gpu-flux.jsonl.
#
# On a bare GPU machine with no package registry the host travels with the tree: run
# bench/prepare_gpu_carry.sh here first and carry .gpu (a slim ComfyUI plus cp312 wheels of av,
# torchsde and trampoline, which the machine's image lacks; onnxruntime and onnx are optional:
# without them the FaceID line says "skipped").
set -euo pipefail
cd "$(dirname "$0")/.."

# .gpu/ (made by bench/prepare_gpu_carry.sh, carried by the device call): the host and its wheels
if [ -d .gpu/whl ] && compgen -G ".gpu/whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d .gpu/ComfyUI ] && [ -z "${IDEA_COMFYUI:-}" ]; then
    export IDEA_COMFYUI="$PWD/.gpu/ComfyUI" IDEA_CACHE="$PWD/.gpu/cache"
fi
PY="${IDEA_PY:-}"
if [ -z "$PY" ]; then
    if [ -x .host/venv/bin/python ] && .host/venv/bin/python -c "" 2>/dev/null; then PY=.host/venv/bin/python; else PY=python3; fi
fi
export PYTHONUNBUFFERED=1

args=(--device cuda --steps 40 --recipe-steps 20 --checkpointing auto,on --sampling-steps 30
      --sampling-reps 3 --profile-steps 6)
name=bench-gpu
if [ "${1:-}" = flux ]; then
    shift
    args=(--device cuda --models flux,flux_fp8 --only training,flux_sweep,sampling --steps 8
          --checkpointing auto,off --sampling-steps 20 --sampling-reps 2 --sweep-steps 4)
    name=bench-gpu-flux
fi
limit="${BENCH_TIMEOUT:-570}"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    timeout -k 10 "$limit" "$PY" bench/run_all.py "${args[@]}" --out "$OUT/$name.jsonl" "$@" \
        2> >(tee "$OUT/$name.log" >&2)
else
    timeout -k 10 "$limit" "$PY" bench/run_all.py "${args[@]}" "$@"
fi
