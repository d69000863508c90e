"""Deterministic, atomic .safetensors writes, shared by identity, prompt-embedding and optimiser-state files.

The same contents must always give the same bytes (so a file's checksum and a re-save are stable),
and a crash mid-write must never leave a half-written file behind or replace someone's file silently.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile

import safetensors.torch
import torch


def serialize(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes with the header's keys in sorted order. The library writes its metadata in
    hash-map order, which differs from run to run, so the same identity would give different files;
    sorted, the same contents always give the same bytes (data offsets are relative to the end of
    the header, so only the header is rewritten)."""
    payload = safetensors.torch.save(tensors, metadata=metadata)
    (length,) = struct.unpack("<Q", payload[:8])
    header = json.dumps(json.loads(payload[8:8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # keep the data 8-byte aligned, as the library does
    return struct.pack("<Q", len(header)) + header + payload[8 + length:]


def write_atomically(payload: bytes, path: str | os.PathLike, overwrite: bool) -> None:
    """Temp file in the target folder, fsync, then link (no-clobber) or replace into place."""
    path = os.path.abspath(os.fspath(path))
    if not path.lower().endswith(".safetensors"):
        raise ValueError(f"{path}: the file name must end in .safetensors")
    refusal = (f"{path} already exists and was left unchanged; choose another name, "
               f"or set overwrite=True to replace it")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(refusal)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(payload)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.chmod(temp_path, 0o644)
        if overwrite:
            os.replace(temp_path, path)
            return
        try:
            os.link(temp_path, path)  # fails if another writer got there first: never clobbers
        except FileExistsError:
            raise FileExistsError(refusal) from None
        except OSError:  # file systems without hard links
            if os.path.exists(path):
                raise FileExistsError(refusal) from None
            os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
