"""What an ID-EA identity file is: its format marker and versions, and the checksum over its contents.

Shared by the writer (identity_writing) and the reader (identity_file), so both agree on one definition.
A SHA-256 over the tensors and metadata catches corruption that would still parse (a flipped digit in
a name or a number).
"""
from __future__ import annotations

import hashlib

import torch

FORMAT_MARKER = "ID-EA identity"
FORMAT_VERSION = "1"
SUPPORTED_FORMAT_VERSIONS = ("1",)
PROMPT_EMBEDDING_KEYS = ("clip_l", "clip_h", "clip_g", "t5xxl")
MAX_SEED = 2 ** 63 - 2  # the adapter is seeded with seed + 1; torch takes seeds below 2**64


def checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes) and every metadata entry but the checksum."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    for key in sorted(metadata):
        if key != "idea.checksum":
            digest.update(f"{key}={metadata[key]}\n".encode())
    return digest.hexdigest()
