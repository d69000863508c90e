#!/usr/bin/env bash
# Assemble .gpu/ (git-ignored) for a lent GPU machine, which reaches no package registry: a slim copy
# of the provisioned ComfyUI and cp312 wheels of the three packages the host needs that the machine's
# image lacks (av, torchsde, trampoline). Run it here after `make test` has provisioned, then:
#   device run: command "bench/gpu_all.sh", carry [".gpu"], timeout_s 600
# The working tree that travels is limited to 64 MiB; the script prints the total.
set -euo pipefail
cd "$(dirname "$0")/.."
source .host/env.sh
rm -rf .gpu && mkdir -p .gpu/whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/whl av==19.0.2 torchsde==0.2.6 trampoline==0.1.2
# Tokenizers of text encoders SD1.x/SD2.x/SDXL never use, tests, and caches stay behind.
tar -C "$(dirname "$IDEA_COMFYUI")" -cf - \
  --exclude='__pycache__' --exclude='*/tests' --exclude='*/tests-unit' \
  --exclude='*/comfy/text_encoders/llama_tokenizer' --exclude='*/comfy/text_encoders/qwen25_tokenizer' \
  --exclude='*/comfy/text_encoders/t5_pile_tokenizer' --exclude='*/custom_nodes/*' \
  "$(basename "$IDEA_COMFYUI")" | tar -C .gpu -xf -
[ "$(basename "$IDEA_COMFYUI")" = ComfyUI ] || mv ".gpu/$(basename "$IDEA_COMFYUI")" .gpu/ComfyUI
mkdir -p .gpu/ComfyUI/custom_nodes
tree_mib=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) / 1048576 ))
gpu_mib=$(( $(du -sb .gpu | cut -f1) / 1048576 ))
echo "prepared .gpu: ${gpu_mib} MiB (+ ${tree_mib} MiB of tracked files; the limit is 64 MiB)"
