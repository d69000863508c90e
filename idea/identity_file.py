"""Reading identity files (.safetensors only) into an IdentityEmbedding, and the pack's identity-file API.

Identity files are shared between people, so loading must never execute anything (no pickle) and must
say plainly what is wrong with a bad file: the container is checked first (safetensors_checks), then the
metadata, the checksum (identity_format) and every tensor's shape before any module is allocated.

This module is also the one place the rest of the pack imports identity files from: it re-exports the
writers (identity_writing) and the error type, so `from .identity_file import save_identity` keeps working.
"""
from __future__ import annotations

import json
import logging
import math
import os

import torch
from safetensors import safe_open

from .adapter import IDAdapter
from .enhancer import IDEnhancer
from .identity import ARCH_ENCODER_KEYS, ARCH_LABELS, IdentityEmbedding
from .identity_format import (
    FORMAT_MARKER,
    MAX_SEED,
    SUPPORTED_FORMAT_VERSIONS,
    checksum,
)
from .identity_writing import save_embedding_for_prompts, save_identity
from .safetensors_checks import ACCEPTED, IdentityFileError, check_container
from .version import PACK_VERSION

__all__ = ["IdentityFileError", "load_identity", "read_checksum", "save_embedding_for_prompts", "save_identity"]

logger = logging.getLogger(__name__)


def load_identity(path: str | os.PathLike, expected_arch: str | None = None,
                  expected_ctx_dim: int | None = None) -> IdentityEmbedding:
    """Read and validate an identity file; optionally check it fits the connected base model."""
    path = os.fspath(path)
    check_container(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors reports what the header check cannot see its own way
        raise IdentityFileError(f"{path} is a damaged safetensors file ({error}); {ACCEPTED}") from error
    _check_metadata(path, metadata)
    if metadata.get("idea.checksum") != checksum(tensors, metadata):
        raise IdentityFileError(f"{path} is corrupted: its contents do not match the checksum written "
                                f"when it was saved; {ACCEPTED}")
    identity = _build_identity(path, metadata, tensors)
    _check_expected(identity, expected_arch, expected_ctx_dim)
    return identity


def _check_metadata(path: str, metadata: dict[str, str]) -> None:
    if metadata.get("idea.format") != FORMAT_MARKER:
        raise IdentityFileError(f"{path} is a safetensors file without ID-EA identity metadata (a prompt "
                                f"embedding belongs in models/embeddings and is used as embedding:NAME); "
                                f"{ACCEPTED}")
    version = metadata.get("idea.format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise IdentityFileError(f"{path} uses identity format version {version!r}, which this pack "
                                f"({PACK_VERSION}) cannot read (it reads {', '.join(SUPPORTED_FORMAT_VERSIONS)}); "
                                f"update ComfyUI-ID-EA")
    arch = metadata.get("idea.arch")
    if arch not in ARCH_ENCODER_KEYS:
        raise IdentityFileError(f"{path} names an unknown base architecture {arch!r} "
                                f"(known: {', '.join(sorted(ARCH_ENCODER_KEYS))})")


def _meta_int(path: str, metadata: dict[str, str], key: str) -> int:
    try:
        return int(metadata[key])
    except (KeyError, ValueError):
        raise IdentityFileError(f"{path}: metadata field {key} is missing or not an integer") from None


def _take(path: str, tensors: dict[str, torch.Tensor], name: str, shape: list[int] | None) -> torch.Tensor:
    if name not in tensors:
        raise IdentityFileError(f"{path} is incomplete: tensor {name!r} is missing")
    tensor = tensors[name]
    if shape is not None and list(tensor.shape) != shape:
        raise IdentityFileError(f"{path}: tensor {name!r} has shape {list(tensor.shape)}, expected {shape}")
    if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
        raise IdentityFileError(f"{path}: tensor {name!r} is not a finite floating-point tensor")
    return tensor.clone()  # own, aligned storage: kernels on misaligned views round differently


def _check_module_state(path: str, module: torch.nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    for name, value in module.state_dict().items():
        tensor = tensors.get(prefix + name)
        if tensor is None or list(tensor.shape) != list(value.shape):
            raise IdentityFileError(f"{path}: tensor {prefix + name!r} is missing or has the wrong shape "
                                    f"(expected {list(value.shape)})")


def _load_module_state(path: str, module: torch.nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    expected = module.state_dict()
    state = {name: _take(path, tensors, prefix + name, list(value.shape)) for name, value in expected.items()}
    module.load_state_dict(state)
    module.eval()


def _build_identity(path: str, metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> IdentityEmbedding:
    arch = metadata["idea.arch"]
    keys = ARCH_ENCODER_KEYS[arch]
    ctx_dim, num_tokens = _meta_int(path, metadata, "idea.ctx_dim"), _meta_int(path, metadata, "idea.num_tokens")
    face_dim, seed = _meta_int(path, metadata, "idea.face_dim"), _meta_int(path, metadata, "idea.seed")
    try:
        training = json.loads(metadata["idea.training"])
        train_enhancer = json.loads(metadata["idea.train_enhancer"])
        beta = float(metadata["idea.adapter_beta"])
        face_model_name = metadata["idea.face_model_name"]
        clip_layers = json.loads(metadata["idea.clip_layers"]) if "idea.clip_layers" in metadata else None
    except (KeyError, ValueError, RecursionError) as error:
        raise IdentityFileError(f"{path}: identity metadata is missing or unreadable "
                                f"({type(error).__name__}: {str(error)[:200]})") from None
    if not isinstance(training, dict) or not isinstance(train_enhancer, bool) or not math.isfinite(beta):
        raise IdentityFileError(f"{path}: identity metadata has values of the wrong kind")
    if not 0 <= seed <= MAX_SEED or min(ctx_dim, num_tokens, face_dim) < 1:
        raise IdentityFileError(f"{path}: identity metadata has sizes or a seed out of range")
    token_vectors = {key: _take(path, tensors, f"token_vectors.{key}", None) for key in keys}
    initial = {key: _take(path, tensors, f"initial_vectors.{key}", list(token_vectors[key].shape)) for key in keys}
    anchor = _take(path, tensors, "anchor", [num_tokens, ctx_dim])
    face_mean = _take(path, tensors, "face_mean", [face_dim])
    saved_fused = _take(path, tensors, "fused_tokens", [num_tokens, ctx_dim])
    enhancer_heads = _meta_int(path, metadata, "idea.enhancer_heads")
    adapter_heads = _meta_int(path, metadata, "idea.adapter_heads")
    try:
        with torch.device("meta"):  # shapes only: check the file holds them before allocating the modules
            _check_module_state(path, IDEnhancer(face_dim, ctx_dim, num_tokens, heads=enhancer_heads), "enhancer.",
                                tensors)
            _check_module_state(path, IDAdapter(ctx_dim, heads=adapter_heads, beta=beta), "adapter.", tensors)
        enhancer = IDEnhancer(face_dim, ctx_dim, num_tokens, heads=enhancer_heads, seed=seed)
        adapter = IDAdapter(ctx_dim, heads=adapter_heads, beta=beta, seed=seed + 1)
        _load_module_state(path, enhancer, "enhancer.", tensors)
        _load_module_state(path, adapter, "adapter.", tensors)
        identity = IdentityEmbedding(arch=arch, token_vectors=token_vectors, initial_vectors=initial, anchor=anchor,
                                     enhancer=enhancer, adapter=adapter, face_mean=face_mean,
                                     face_model_name=face_model_name, train_enhancer=bool(train_enhancer),
                                     seed=seed, metadata=training, clip_layers=_clip_layers(path, clip_layers))
    except ValueError as error:
        raise IdentityFileError(f"{path}: the identity's parts do not fit together ({error})") from None
    with torch.no_grad():
        if not torch.allclose(identity.fused_tokens(), saved_fused, rtol=1e-4, atol=1e-5):
            logger.warning("%s: fused tokens recomputed from the enhancer differ from the saved ones", path)
    return identity


def _clip_layers(path: str, value) -> dict[str, str] | None:
    if value is None or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
        return value
    raise IdentityFileError(f"{path}: metadata field idea.clip_layers is not a mapping of encoder to layer")


def read_checksum(path: str | os.PathLike) -> str | None:
    """The checksum an identity file was saved with (from its header only), or None if unreadable."""
    try:
        with safe_open(os.fspath(path), framework="pt", device="cpu") as handle:
            return (handle.metadata() or {}).get("idea.checksum")
    except Exception:  # any unreadable file simply has no usable checksum
        return None


def _check_expected(identity: IdentityEmbedding, expected_arch: str | None, expected_ctx_dim: int | None) -> None:
    trained_on = f"{ARCH_LABELS[identity.arch]} (context size {identity.ctx_dim})"
    if expected_arch is not None and expected_arch != identity.arch:
        wanted = ARCH_LABELS.get(expected_arch, expected_arch)
        raise IdentityFileError(f"this identity was trained on {trained_on}, but the connected model is "
                                f"{wanted}; train an identity on this base model or load a "
                                f"{ARCH_LABELS[identity.arch]} checkpoint")
    if expected_ctx_dim is not None and expected_ctx_dim != identity.ctx_dim:
        raise IdentityFileError(f"this identity was trained on {trained_on}, but the connected model's "
                                f"cross-attention context size is {expected_ctx_dim}")
