"""Writing identity files and the host-format prompt-embedding files saved beside them.

Refuses to keep what is not worth keeping (inf/nan from a diverged run) and never replaces a user's
file unless asked; the bytes are deterministic and written atomically (safetensors_writes).
"""
from __future__ import annotations

import json
import logging
import os

import torch

from .identity import IdentityEmbedding
from .identity_format import (
    FORMAT_MARKER,
    FORMAT_VERSION,
    PROMPT_EMBEDDING_KEYS,
    checksum,
)
from .safetensors_writes import serialize, write_atomically
from .version import PACK_VERSION

logger = logging.getLogger(__name__)


def save_identity(identity: IdentityEmbedding, path: str | os.PathLike, overwrite: bool = False) -> str:
    """Write `identity` to `path` (.safetensors) and return its checksum. Refuses to replace an existing
    file unless overwrite=True, and refuses identities holding inf/nan (a diverged run is not worth
    keeping)."""
    tensors = _identity_tensors(identity)
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"not saving: {name} contains inf or nan (training diverged; "
                             f"try a lower learning rate)")
    metadata = _identity_metadata(identity)
    metadata["idea.checksum"] = checksum(tensors, metadata)
    write_atomically(serialize(tensors, metadata), path, overwrite)
    logger.info("saved ID-EA identity (%s, %d tokens) to %s", identity.arch, identity.num_tokens, path)
    return metadata["idea.checksum"]


def save_embedding_for_prompts(token_vectors: dict[str, torch.Tensor], path: str | os.PathLike,
                               overwrite: bool = False) -> None:
    """Write the token vectors in the host's embedding format (keys clip_l / clip_h / clip_g / t5xxl,
    each [K, D_tok]) so `embedding:NAME` works in any prompt, with or without this pack: each of the
    host's tokenizers reads its own key from the one file."""
    if not token_vectors or not set(token_vectors) <= set(PROMPT_EMBEDDING_KEYS):
        raise ValueError(f"prompt embeddings need keys among {PROMPT_EMBEDDING_KEYS}, got {sorted(token_vectors)}")
    counts = {key: value.shape[0] for key, value in token_vectors.items() if value.dim() == 2}
    if len(counts) != len(token_vectors) or len(set(counts.values())) != 1:
        raise ValueError("every encoder's vectors must be [K, D] with the same K, got "
                         f"{ {key: list(value.shape) for key, value in token_vectors.items()} }")
    tensors = {key: value.detach().to("cpu", torch.float32).contiguous().clone()
               for key, value in token_vectors.items()}
    if not all(torch.isfinite(value).all() for value in tensors.values()):
        raise ValueError("not saving: the token vectors contain inf or nan")
    metadata = {"idea.kind": "ID-EA prompt embedding", "idea.pack_version": PACK_VERSION}
    write_atomically(serialize(tensors, metadata), path, overwrite)
    logger.info("saved prompt embedding (%s) to %s", ", ".join(sorted(tensors)), path)


def _identity_tensors(identity: IdentityEmbedding) -> dict[str, torch.Tensor]:
    """Flat tensor dict; names never collide with the host's prompt-embedding keys."""
    tensors = {}
    for key in identity.encoder_keys:
        tensors[f"token_vectors.{key}"] = identity.token_vectors[key]
        tensors[f"initial_vectors.{key}"] = identity.initial_vectors[key]
    tensors["anchor"] = identity.anchor
    tensors["face_mean"] = identity.face_mean
    with torch.no_grad():
        tensors["fused_tokens"] = identity.fused_tokens()
    tensors.update({f"adapter.{name}": value for name, value in identity.adapter.state_dict().items()})
    tensors.update({f"enhancer.{name}": value for name, value in identity.enhancer.state_dict().items()})
    return {name: value.detach().to("cpu").contiguous().clone() for name, value in tensors.items()}


def _identity_metadata(identity: IdentityEmbedding) -> dict[str, str]:
    try:
        training = json.dumps(identity.metadata, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"identity metadata must be JSON-serialisable: {error}") from error
    return {
        "idea.format": FORMAT_MARKER, "idea.format_version": FORMAT_VERSION, "idea.arch": identity.arch,
        "idea.ctx_dim": str(identity.ctx_dim), "idea.num_tokens": str(identity.num_tokens),
        "idea.encoders": ",".join(identity.encoder_keys), "idea.face_model_name": identity.face_model_name,
        "idea.face_dim": str(identity.face_dim), "idea.train_enhancer": json.dumps(identity.train_enhancer),
        "idea.seed": str(identity.seed), "idea.enhancer_heads": str(identity.enhancer.heads),
        "idea.adapter_heads": str(identity.adapter.heads), "idea.adapter_beta": repr(identity.adapter.beta),
        "idea.training": training, "idea.pack_version": PACK_VERSION,
        **({"idea.clip_layers": json.dumps(identity.clip_layers, sort_keys=True)}
           if identity.clip_layers is not None else {}),
    }
